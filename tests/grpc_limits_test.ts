/**
 * A real service process takes its gRPC limits from the environment: the SETTINGS it announces
 * (`GRPC_MAX_CONCURRENT_STREAMS`) and the deadline it holds calls to (`GRPC_MAX_DEADLINE`), against
 * a raw HTTP/2 peer and a grpc-js client.
 */
import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { connect, grpcFailure } from "./helpers/capability_client.ts";
import { FRAME, rawFrame, settingsPayload } from "./helpers/raw_http2_peer.ts";
import { eventually } from "./helpers/poll.ts";
import { startService } from "./helpers/service_process.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;

/** The first frame the server sends after the preface: its SETTINGS, as a map. */
async function serverSettings(port: number): Promise<Map<number, number>> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(PREFACE);
    await conn.write(rawFrame(FRAME.SETTINGS, 0, 0, settingsPayload([])));
    let bytes = new Uint8Array(0);
    const buffer = new Uint8Array(4096);
    for (let reads = 0; reads < 100; reads++) {
      if (bytes.length >= 9) {
        const length = (bytes[0] << 16) | (bytes[1] << 8) | bytes[2];
        if (bytes.length >= 9 + length) {
          assert.equal(bytes[3], FRAME.SETTINGS);
          const view = new DataView(bytes.buffer, 9, length);
          const values = new Map<number, number>();
          for (let at = 0; at + 6 <= length; at += 6) {
            values.set(view.getUint16(at), view.getUint32(at + 2));
          }
          return values;
        }
      }
      const read = await conn.read(buffer);
      if (read === null) break;
      const joined = new Uint8Array(bytes.length + read);
      joined.set(bytes);
      joined.set(buffer.subarray(0, read), bytes.length);
      bytes = joined;
    }
    throw new Error("The server sent no SETTINGS frame");
  } finally {
    conn.close();
  }
}

Deno.test("a service takes GRPC_MAX_CONCURRENT_STREAMS and GRPC_MAX_DEADLINE from its environment", async (t) => {
  const consul = await startConsulDev();
  const echo = startService("echo-agent", {
    consulUrl: consul.url,
    id: "grpc-limits-echo",
    env: { GRPC_MAX_CONCURRENT_STREAMS: "7", GRPC_MAX_DEADLINE: "500ms" },
  });
  const client = connect(echo.address);
  try {
    await eventually("the echo agent to answer", () => client.describe(), Boolean);
    await t.step("SETTINGS_MAX_CONCURRENT_STREAMS 7 is announced", async () => {
      assert.equal((await serverSettings(echo.port)).get(SETTINGS_MAX_CONCURRENT_STREAMS), 7);
    });
    await t.step(
      "a call longer than the maximum deadline ends with DEADLINE_EXCEEDED",
      async () => {
        // The client allows 15 s; the server allows 500 ms; the tool would take 5 s.
        const failure = await grpcFailure(
          client.invoke("echo", { message: "slow", delay_ms: 5000 }),
        );
        assert.equal(failure.code, "DEADLINE_EXCEEDED");
        assert.match(failure.details, /server's maximum of 500 ms/);
      },
    );
    await t.step("a call within it is served", async () => {
      const response = await client.invoke("echo", { message: "quick", delay_ms: 10 });
      assert.equal(JSON.parse(response.resultJson).message, "quick");
    });
  } finally {
    client.close();
    await echo.stop();
    await consul.stop();
  }
});
