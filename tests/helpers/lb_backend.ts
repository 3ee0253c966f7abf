/**
 * A stand-in MCP router for load balancer tests and benchmarks: `GET /readyz`, `POST /mcp` answering
 * JSON-RPC with its name. Run as a script (`deno run -A lb_backend.ts <port> <name>`) it serves
 * until killed; {@linkcode spawnBackend} starts one as a child process so a test can `kill -9` it.
 */
import { until } from "./poll.ts";

/** A backend process. */
export interface Backend {
  readonly name: string;
  readonly port: number;
  /** Sends a signal (SIGKILL for a crash, SIGTERM for a stop) and waits for the exit. */
  kill(signal?: Deno.Signal): Promise<void>;
}

function serve(port: number, name: string): Deno.HttpServer {
  return Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/readyz" || pathname === "/healthz") return new Response("ready\n");
    if (pathname === "/mcp" && request.method === "POST") {
      const body = await request.json().catch(() => ({}));
      return Response.json({ jsonrpc: "2.0", id: body.id ?? null, result: { backend: name } });
    }
    return new Response(`${name}\n`);
  });
}

/** Starts a backend process on `port` and waits until it answers `/readyz`. */
export async function spawnBackend(name: string, port: number): Promise<Backend> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", new URL(import.meta.url).pathname, String(port), name],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await until(`backend "${name}" to answer on port ${port}`, async () => {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      await response.body?.cancel();
      return response.ok;
    }, { timeoutMs: 15_000 });
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  }
  return {
    name,
    port,
    async kill(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // Already gone.
      }
      await child.status;
    },
  };
}

/** Options of {@linkcode registerInstance}. */
export interface RegisterOptions {
  service?: string;
  /** `http`: Consul checks `/readyz` every second; `ttl`: the caller sets the status. */
  check?: "http" | "ttl";
  weight?: number;
}

/** Registers `id` on 127.0.0.1:`port` with a passing check. */
export async function registerInstance(
  consulUrl: string,
  id: string,
  port: number,
  options: RegisterOptions = {},
): Promise<void> {
  const check = options.check === "http"
    ? { HTTP: `http://127.0.0.1:${port}/readyz`, Interval: "1s", Status: "passing" }
    : { TTL: "10m", Status: "passing" };
  const response = await fetch(`${consulUrl}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify({
      ID: id,
      Name: options.service ?? "mcp-router",
      Address: "127.0.0.1",
      Port: port,
      Tags: ["platform"],
      Weights: { Passing: options.weight ?? 1, Warning: 1 },
      Check: { CheckID: `check:${id}`, ...check },
    }),
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`Cannot register "${id}": ${response.status}`);
}

/** Removes `id` from Consul. */
export async function deregisterInstance(consulUrl: string, id: string): Promise<void> {
  const response = await fetch(`${consulUrl}/v1/agent/service/deregister/${id}`, {
    method: "PUT",
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`Cannot deregister "${id}": ${response.status}`);
}

/** Sets the TTL check of `id` to `status`. */
export async function setTtlStatus(
  consulUrl: string,
  id: string,
  status: "passing" | "warning" | "critical",
): Promise<void> {
  const verb = status === "passing" ? "pass" : status === "warning" ? "warn" : "fail";
  const response = await fetch(`${consulUrl}/v1/agent/check/${verb}/check:${id}`, {
    method: "PUT",
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`Cannot set "${id}" ${status}: ${response.status}`);
}

if (import.meta.main) {
  const [port, name] = Deno.args;
  serve(Number(port), name ?? `backend-${port}`);
}
