import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { backendInFlight, connectV1, connectV2, startRouter } from "./router_harness.ts";

/** A call the echo agent would answer only after 8 s, unless cancelled. */
const SLOW_ECHO = { name: "echo", arguments: { message: "slow", delay_ms: 8000 } };

/** The echo agent's log lines with message `msg` (its JSON fields), oldest first. */
function rpcLines(
  output: string,
  msg: string,
): { rpc: string; requestId: string; outcome?: string }[] {
  return output.split("\n")
    .filter((line) => line.includes(`"msg":"${msg}"`))
    .map((line) => JSON.parse(line));
}

Deno.test("mcp-router cancels the backend gRPC call when the client cancels or goes away", async (t) => {
  const consul = await startConsulDev();
  // At debug level the echo agent logs "rpc started": the test closes a client only once the
  // backend has its call, since a call cancelled before it reached the backend leaves no trace there.
  const echo = startService("echo-agent", {
    consulUrl: consul.url,
    id: "echo-1",
    env: { LOG_LEVEL: "debug" },
  });
  const router = await startRouter(consul.url, "router-a");
  const v1 = await connectV1(router.url);
  const v2 = await connectV2(router.url);
  /**
   * Starts `call`, waits until the echo agent has it, then cancels it (abort, or closing the
   * connection) and waits for the echo agent to end that very call as CANCELLED.
   */
  async function cancelInFlight(
    call: (signal: AbortSignal) => Promise<unknown>,
    expectedRpc: string,
  ): Promise<void> {
    const startedBefore = rpcLines(echo.output(), "rpc started").length;
    const controller = new AbortController();
    const settled = call(controller.signal).then(() => "answered", () => "rejected");
    const [started] = await eventually(
      "the echo agent to start the call",
      () => Promise.resolve(rpcLines(echo.output(), "rpc started").slice(startedBefore)),
      (lines) => lines.length > 0,
    );
    assert.equal(started.rpc, expectedRpc);
    controller.abort();
    assert.equal(await settled, "rejected");
    const ended = await eventually(
      "the echo agent to end the call",
      () =>
        Promise.resolve(
          rpcLines(echo.output(), "rpc").filter((line) => line.requestId === started.requestId),
        ),
      (lines) => lines.length > 0,
    );
    assert.equal(ended[0].outcome, "CANCELLED");
    await eventually(
      "no call in flight",
      () => backendInFlight(router, "agent-echo"),
      (count) => count === 0,
    );
  }
  try {
    await eventually(
      "echo in the catalog",
      async () => (await v2.listTools()).tools.length,
      (count) => count > 0,
    );

    await t.step("notifications/cancelled from a 2025 client", async () => {
      // SDK 1.x sends notifications/cancelled on abort and leaves the POST itself open.
      await cancelInFlight(
        (signal) => v1.client.callTool(SLOW_ECHO, undefined, { signal }),
        "Invoke",
      );
    });

    /** A raw tools/call of the slow echo; aborting closes its connection. */
    const post = (
      signal: AbortSignal,
      id: number,
      headers: Record<string, string>,
      meta: Record<string, unknown>,
    ) =>
      fetch(router.url, {
        method: "POST",
        signal,
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...headers,
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id,
          method: "tools/call",
          params: { ...SLOW_ECHO, _meta: meta },
        }),
      }).then((response) => response.text());
    /** On the SDK 1.x client's session. */
    const session2025 = {
      "mcp-session-id": v1.transport.sessionId!,
      "mcp-protocol-version": "2025-11-25",
    };

    await t.step("a 2025 client closing its connection (plain JSON answer)", async () => {
      await cancelInFlight((signal) => post(signal, 41, session2025, {}), "Invoke");
    });

    await t.step("a 2025 client closing its event stream (call with progress)", async () => {
      await cancelInFlight(
        (signal) => post(signal, 43, session2025, { progressToken: "p-1" }),
        "InvokeStream",
      );
    });

    await t.step("a 2026-07-28 client abandoning its request", async () => {
      await cancelInFlight((signal) => v2.callTool(SLOW_ECHO, { signal }), "Invoke");
    });

    await t.step("a 2026-07-28 request whose connection closes", async () => {
      const headers = {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "echo",
      };
      const meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
        "io.modelcontextprotocol/clientCapabilities": {},
      };
      await cancelInFlight((signal) => post(signal, 42, headers, meta), "Invoke");
    });
  } finally {
    await v1.client.close().catch(() => {});
    await v2.close().catch(() => {});
    await router.stop();
    await echo.stop();
    await consul.stop();
  }
});
