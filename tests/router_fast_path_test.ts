import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { eventually } from "./helpers/poll.ts";
import { startService } from "./helpers/service_process.ts";
import {
  connectV1,
  connectV2,
  resultText,
  type RouterProcess,
  sessionKeyText,
  startRouter,
} from "./router_harness.ts";

const JSON_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};
const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};
const MAX_BODY_BYTES = 65536;

/** Tool calls the router served by path (`fast` or `sdk`), from its `/metrics`. */
async function callsByPath(router: RouterProcess): Promise<{ fast: number; sdk: number }> {
  const text = await (await fetch(`http://127.0.0.1:${router.opsPort}/metrics`)).text();
  const count = (path: string) =>
    Number(
      new RegExp(`mcp_router_tool_calls_by_path_total\\{path="${path}"\\} (\\d+)`).exec(text)
        ?.[1] ?? 0,
    );
  return { fast: count("fast"), sdk: count("sdk") };
}

Deno.test("mcp-router serves tool calls on its fast path to both SDK clients, and refuses bad input", async (t) => {
  const consul = await startConsulDev();
  const backends = [
    startService("echo-agent", { consulUrl: consul.url, id: "echo-1" }),
    startService("itinerary-worker", { consulUrl: consul.url, id: "itinerary-1" }),
    startService("weather-tool", { consulUrl: consul.url, id: "weather-1" }),
  ];
  const router = await startRouter(consul.url, "router-fast", {
    ROUTER_SESSION_KEY: sessionKeyText(),
    ROUTER_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
  });
  const v1 = await connectV1(router.url);
  const v2 = await connectV2(router.url);
  /** Posts `body` (an object, or text as is) and returns the status and the parsed answer. */
  async function post(
    body: unknown,
    headers: Record<string, string>,
  ): Promise<{ status: number; type: string; answer: unknown; text: string }> {
    const response = await fetch(router.url, {
      method: "POST",
      headers: { ...JSON_HEADERS, ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = undefined;
    }
    return { status: response.status, type, answer, text };
  }
  const session = () => ({
    "mcp-session-id": v1.transport.sessionId!,
    "mcp-protocol-version": "2025-11-25",
  });
  const modernHeaders = (name: string) => ({
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": name,
  });
  try {
    await eventually(
      "the three tools in the catalog",
      async () => (await v2.listTools()).tools.length,
      (count) => count === 3,
    );

    await t.step("SDK 1.x and 2.x calls go the fast path and come back right", async () => {
      const before = await callsByPath(router);
      for (let i = 0; i < 20; i++) {
        for (const client of [v1.client, v2]) {
          const message = `m-${i}-${client === v2 ? 2 : 1}`;
          const result = await client.callTool({ name: "echo", arguments: { message } });
          assert.equal(result.isError, undefined, resultText(result));
          assert.deepEqual(result.structuredContent, {
            message,
            instance_id: "echo-1",
            delay_ms: 0,
          });
          assert.equal(JSON.parse(resultText(result)).message, message);
        }
      }
      const after = await callsByPath(router);
      assert.equal(after.fast - before.fast, 40);
      assert.equal(after.sdk - before.sdk, 0);
    });

    await t.step("progress comes as an event stream to both SDK clients", async () => {
      const before = await callsByPath(router);
      const args = {
        destinations: [{ city: "Porto", days: 2 }, { city: "Faro", days: 1 }],
        start_date: "2026-08-01",
      };
      const seen1: number[] = [];
      const seen2: number[] = [];
      const a = await v1.client.callTool({ name: "plan_itinerary", arguments: args }, undefined, {
        onprogress: (p: { progress: number }) => seen1.push(p.progress),
      });
      const b = await v2.callTool({ name: "plan_itinerary", arguments: args }, {
        onprogress: (p) => seen2.push(p.progress),
      });
      assert.equal(a.isError, undefined, resultText(a));
      assert.equal(b.isError, undefined, resultText(b));
      assert.deepEqual(seen1, [1, 2, 3]);
      assert.deepEqual(seen2, [1, 2, 3]);
      assert.equal((await callsByPath(router)).fast - before.fast, 2);
    });

    await t.step(
      "a progress token on a one-message tool is answered as an event stream",
      async () => {
        const before = await callsByPath(router);
        const raw = await post({
          jsonrpc: "2.0",
          id: 4,
          method: "tools/call",
          params: { name: "echo", arguments: { message: "p" }, _meta: { progressToken: "t" } },
        }, session());
        assert.equal(raw.status, 200);
        assert.match(raw.type, /^text\/event-stream/);
        const data = raw.text.split("\n").find((line) => line.startsWith("data: "))!;
        const answer = JSON.parse(data.slice(6));
        assert.equal(answer.id, 4);
        assert.equal(answer.result.structuredContent.message, "p");
        assert.equal((await callsByPath(router)).fast - before.fast, 1);
      },
    );

    await t.step("wrong arguments are a tool error naming the field, in both eras", async () => {
      for (const client of [v1.client, v2]) {
        const wrong = await client.callTool({ name: "echo", arguments: { message: 42 } });
        assert.equal(wrong.isError, true);
        assert.match(resultText(wrong), /"message"/);
        const extra = await client.callTool({ name: "echo", arguments: { message: "a", x: 1 } });
        assert.equal(extra.isError, true);
        assert.match(resultText(extra), /"x"/);
      }
      const raw = await post({
        jsonrpc: "2.0",
        id: 5,
        method: "tools/call",
        params: { name: "echo", _meta: ENVELOPE },
      }, modernHeaders("echo"));
      assert.equal(raw.status, 200);
      const result = (raw.answer as { result: { isError: boolean; content: { text: string }[] } })
        .result;
      assert.equal(result.isError, true);
      assert.match(result.content[0].text, /"message": is required/);
    });

    await t.step("an unknown tool is -32602 in both eras", async () => {
      for (const client of [v1.client, v2]) {
        await assert.rejects(
          () => client.callTool({ name: "nope", arguments: {} }),
          /Unknown tool "nope"/,
        );
      }
      const raw = await post(
        { jsonrpc: "2.0", id: "u", method: "tools/call", params: { name: "nope" } },
        session(),
      );
      assert.equal(raw.status, 200);
      assert.deepEqual(raw.answer, {
        jsonrpc: "2.0",
        id: "u",
        error: { code: -32602, message: 'Unknown tool "nope"' },
      });
    });

    await t.step("malformed JSON is a parse error", async () => {
      for (const headers of [session(), modernHeaders("echo")]) {
        const raw = await post('{"jsonrpc":"2.0","id":1,"method":"tools/call",', headers);
        assert.equal(raw.status, 400);
        assert.equal((raw.answer as { error: { code: number } }).error.code, -32700);
      }
    });

    await t.step("arguments that are not an object are -32602 from the SDK", async () => {
      const before = await callsByPath(router);
      const raw = await post({
        jsonrpc: "2.0",
        id: 6,
        method: "tools/call",
        params: { name: "echo", arguments: ["message"] },
      }, session());
      assert.equal((raw.answer as { error: { code: number } }).error.code, -32602);
      assert.equal((await callsByPath(router)).fast, before.fast);
    });

    await t.step("an oversized body is 413, declared or chunked", async () => {
      const big = JSON.stringify({
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: { name: "echo", arguments: { message: "x".repeat(MAX_BODY_BYTES) } },
      });
      assert.equal((await post(big, session())).status, 413);
      const chunks = new TextEncoder().encode(big);
      const response = await fetch(router.url, {
        method: "POST",
        headers: { ...JSON_HEADERS, ...session() },
        body: new ReadableStream({
          start(controller) {
            for (let at = 0; at < chunks.length; at += 8192) {
              controller.enqueue(chunks.subarray(at, at + 8192));
            }
            controller.close();
          },
        }),
      });
      assert.equal(response.status, 413);
      assert.equal((await response.json()).error.code, -32600);
    });

    await t.step("a batch is served by the SDK, not the fast path", async () => {
      const before = await callsByPath(router);
      const raw = await post([
        {
          jsonrpc: "2.0",
          id: 8,
          method: "tools/call",
          params: { name: "echo", arguments: { message: "in a batch" } },
        },
      ], session());
      assert.equal(raw.status, 200);
      assert.match(raw.text, /in a batch/);
      const after = await callsByPath(router);
      assert.equal(after.fast, before.fast);
      assert.equal(after.sdk - before.sdk, 1);
    });

    await t.step("an unknown or ended session is 404", async () => {
      const call = {
        jsonrpc: "2.0",
        id: 9,
        method: "tools/call",
        params: { name: "echo", arguments: { message: "a" } },
      };
      const forged = await post(call, { ...session(), "mcp-session-id": "AAAA" + "B".repeat(60) });
      assert.equal(forged.status, 404);
      const ended = await connectV1(router.url);
      const sessionId = ended.transport.sessionId!;
      await ended.transport.terminateSession();
      await ended.client.close();
      const after = await post(call, { ...session(), "mcp-session-id": sessionId });
      assert.equal(after.status, 404);
    });

    await t.step(
      "requests off the fast path's shape go to the SDK, which answers them",
      async () => {
        const before = await callsByPath(router);
        const call = {
          jsonrpc: "2.0",
          id: 10,
          method: "tools/call",
          params: { name: "echo", arguments: { message: "a" }, _meta: ENVELOPE },
        };
        const mismatch = await post(call, modernHeaders("get_weather"));
        assert.equal(mismatch.status, 400, mismatch.text);
        // The fast path takes only what both transports accept; the modern one serves this too.
        const jsonOnly = await post(call, { ...modernHeaders("echo"), accept: "application/json" });
        assert.equal(jsonOnly.status, 200, jsonOnly.text);
        assert.match(jsonOnly.text, /"message":"a"/);
        assert.equal((await callsByPath(router)).fast, before.fast);
      },
    );
  } finally {
    await v1.client.close().catch(() => {});
    await v2.close().catch(() => {});
    await router.stop();
    for (const backend of backends) await backend.stop();
    await consul.stop();
  }
});
