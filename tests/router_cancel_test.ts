import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { eventually, startService } from "./helpers/service_process.ts";
import { connectV1, connectV2, type RouterProcess, startRouter } from "./router_harness.ts";

/** A call the echo agent would answer only after 8 s, unless cancelled. */
const SLOW_ECHO = { name: "echo", arguments: { message: "slow", delay_ms: 8000 } };

function inFlight(router: RouterProcess): Promise<number> {
  return fetch(`http://127.0.0.1:${router.port}/metrics`).then(async (response) => {
    const text = await response.text();
    const match = /mcp_router_backend_in_flight\{service="agent-echo"\} (\d+)/.exec(text);
    return match ? Number(match[1]) : 0;
  });
}

/** The echo agent's log lines of calls it ended as CANCELLED, by RPC. */
function cancelledCalls(output: string): string[] {
  return output.split("\n")
    .filter((line) => line.includes('"msg":"rpc"') && line.includes('"outcome":"CANCELLED"'))
    .map((line) => JSON.parse(line).rpc as string);
}

Deno.test("mcp-router cancels the backend gRPC call when the client cancels or goes away", async (t) => {
  const consul = await startConsulDev();
  const echo = startService("echo-agent", { consulUrl: consul.url, id: "echo-1" });
  const router = await startRouter(consul.url, "router-a");
  const v1 = await connectV1(router.url);
  /** Tool-call answers whose headers arrived: a client closes a stream it has begun to read. */
  let answersBegun = 0;
  const countingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (typeof init?.body === "string" && init.body.includes('"tools/call"')) answersBegun++;
    return response;
  };
  const v2 = await connectV2(router.url, { fetch: countingFetch });
  /**
   * Starts `call`, waits until the router has it in flight (and, for a closed connection, until
   * the answer has begun), then cancels it.
   */
  async function cancelInFlight(
    call: (signal: AbortSignal) => Promise<unknown>,
    expectedRpc: string,
    options: { awaitAnswer?: boolean } = {},
  ): Promise<void> {
    const before = cancelledCalls(echo.output()).length;
    const begun = answersBegun;
    const controller = new AbortController();
    const settled = call(controller.signal).then(() => "answered", () => "rejected");
    await eventually("the call in flight", () => inFlight(router), (count) => count === 1);
    if (options.awaitAnswer) {
      await eventually(
        "the answer to begin",
        () => Promise.resolve(answersBegun),
        (count) => count > begun,
      );
    }
    controller.abort();
    assert.equal(await settled, "rejected");
    const cancelled = await eventually(
      "the echo agent to log the call as CANCELLED",
      () => Promise.resolve(cancelledCalls(echo.output())),
      (calls) => calls.length > before,
    );
    assert.equal(cancelled.at(-1), expectedRpc);
    await eventually("no call in flight", () => inFlight(router), (count) => count === 0);
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

    const post = (signal: AbortSignal, meta: Record<string, unknown>) =>
      countingFetch(router.url, {
        method: "POST",
        signal,
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": v1.transport.sessionId!,
          "mcp-protocol-version": "2025-11-25",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 41,
          method: "tools/call",
          params: { ...SLOW_ECHO, _meta: meta },
        }),
      }).then((response) => response.text());

    await t.step("a 2025 client closing its event stream (call with progress)", async () => {
      await cancelInFlight(
        (signal) => post(signal, { progressToken: "p-1" }),
        "InvokeStream",
        { awaitAnswer: true },
      );
    });

    await t.step("a 2026-07-28 client abandoning its request", async () => {
      await cancelInFlight((signal) => v2.callTool(SLOW_ECHO, { signal }), "Invoke", {
        awaitAnswer: true,
      });
    });
  } finally {
    await v1.client.close().catch(() => {});
    await v2.close().catch(() => {});
    await router.stop();
    await echo.stop();
    await consul.stop();
  }
});
