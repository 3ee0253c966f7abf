/**
 * Docker healthcheck of a platform service: exit 0 when the service inside this container answers
 * `grpc.health.v1.Health/Check` with SERVING and, when Consul answers, its own registration
 * (`SERVICE_ID`) is passing there.
 *
 *   deno run --allow-net --allow-env health_probe.ts [port]
 *
 * Requiring Consul's "passing" makes Swarm's start-first updates wait until a new task is
 * discoverable before stopping the old one. Consul being unreachable does not fail the check:
 * Swarm would otherwise restart every healthy service during a Consul outage.
 *
 * It speaks gRPC over `node:http2` directly (one empty request, one varint to read) so that a
 * check costs a few milliseconds of CPU instead of loading grpc-js every few seconds.
 */
import * as http2 from "node:http2";
import * as net from "node:net";

const TIMEOUT_MS = 4_000;
const SERVING = 1;

/** Asks the gRPC health of `host:port` (overall service ""); resolves the numeric status. */
export function grpcHealthStatus(
  host: string,
  port: number,
  timeoutMs = TIMEOUT_MS,
): Promise<number> {
  return new Promise((resolve, reject) => {
    // The TCP connection is ours so that it can be dropped without an HTTP/2 GOAWAY frame: a
    // GOAWAY can crash the Deno HTTP/2 stack of the service that receives it (nghttp2 assertion in
    // find_stream_on_goaway_func, denoland/deno#36788), and a healthcheck runs every few seconds.
    const socket = net.connect(port, host);
    const session = http2.connect(`http://${host}:${port}`, { createConnection: () => socket });
    const timer = setTimeout(
      () => finish(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    let settled = false;
    function finish(error: Error | undefined, status?: number): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(status ?? 0);
    }
    session.on("error", (error) => finish(error));
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Uint8Array[] = [];
    let grpcStatus: string | undefined;
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) grpcStatus = String(headers["grpc-status"]);
    });
    stream.on("trailers", (trailers) => {
      if (trailers["grpc-status"] !== undefined) grpcStatus = String(trailers["grpc-status"]);
    });
    stream.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    stream.on("error", (error) => finish(error));
    stream.on("end", () => {
      if (grpcStatus !== undefined && grpcStatus !== "0") {
        return finish(new Error(`grpc-status ${grpcStatus}`));
      }
      finish(undefined, decodeHealthStatus(concat(chunks)));
    });
    // One uncompressed gRPC message of zero bytes: HealthCheckRequest{service: ""}.
    stream.end(new Uint8Array([0, 0, 0, 0, 0]));
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Reads `HealthCheckResponse.status` (field 1, varint) from one framed gRPC message; 0 if absent. */
export function decodeHealthStatus(frame: Uint8Array): number {
  if (frame.length < 5) throw new Error("empty gRPC answer");
  const length = new DataView(frame.buffer, frame.byteOffset, frame.length).getUint32(1);
  const message = frame.subarray(5, 5 + length);
  let i = 0;
  while (i < message.length) {
    const key = message[i++];
    const field = key >> 3;
    const wire = key & 7;
    if (wire !== 0) throw new Error(`unexpected wire type ${wire} in HealthCheckResponse`);
    let value = 0;
    let shift = 0;
    while (i < message.length) {
      const byte = message[i++];
      value |= (byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) === 0) break;
    }
    if (field === 1) return value;
  }
  return 0;
}

/** Consul's view of one instance: "passing", "warning", "critical", "missing", or undefined when Consul did not answer. */
export async function consulInstanceStatus(
  consulUrl: string,
  serviceId: string,
  timeoutMs = TIMEOUT_MS,
): Promise<string | undefined> {
  try {
    const response = await fetch(
      `${consulUrl.replace(/\/+$/, "")}/v1/agent/health/service/id/${
        encodeURIComponent(serviceId)
      }`,
      { signal: AbortSignal.timeout(timeoutMs) },
    );
    await response.body?.cancel();
    switch (response.status) {
      case 200:
        return "passing";
      case 429:
        return "warning";
      case 503:
        return "critical";
      case 404:
        return "missing";
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? Deno.env.get("PORT") ?? "");
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`error: usage: health_probe.ts <port>, got "${Deno.args[0] ?? ""}"`);
    Deno.exit(2);
  }
  try {
    const status = await grpcHealthStatus("127.0.0.1", port);
    if (status !== SERVING) throw new Error(`status ${status}, not SERVING`);
  } catch (error) {
    console.error(`unhealthy: gRPC health of port ${port}: ${(error as Error).message}`);
    Deno.exit(1);
  }
  const serviceId = Deno.env.get("SERVICE_ID");
  const consulUrl = Deno.env.get("CONSUL_HTTP_ADDR");
  if (serviceId && consulUrl) {
    const url = /^[a-z]+:\/\//i.test(consulUrl) ? consulUrl : `http://${consulUrl}`;
    const status = await consulInstanceStatus(url, serviceId);
    if (status !== undefined && status !== "passing") {
      console.error(`unhealthy: "${serviceId}" is ${status} in Consul`);
      Deno.exit(1);
    }
  }
  console.log("healthy");
}
