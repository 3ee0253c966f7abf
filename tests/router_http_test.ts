import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { connectV1, initializeBody, sessionKeyText, startRouter } from "./router_harness.ts";

const JSON_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

Deno.test("mcp-router answers protocol and transport errors with the right status", async (t) => {
  const consul = await startConsulDev();
  const tokens = await Deno.makeTempFile({ prefix: "router-tokens-" });
  await Deno.writeTextFile(tokens, "# test tokens\nletmein\n");
  const open = await startRouter(consul.url, "router-open", {
    ROUTER_SESSION_KEY: sessionKeyText(),
    ROUTER_MAX_BODY_BYTES: "65536",
  });
  const locked = await startRouter(consul.url, "router-locked", {
    ROUTER_AUTH_TOKENS_FILE: tokens,
  });
  async function post(
    url: URL,
    body: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: string }> {
    const response = await fetch(url, {
      method: "POST",
      headers: { ...JSON_HEADERS, ...headers },
      body,
    });
    return { status: response.status, body: await response.text() };
  }
  try {
    await t.step("malformed JSON is a JSON-RPC parse error", async () => {
      const answer = await post(open.url, "{not json");
      assert.equal(answer.status, 400);
      assert.equal(JSON.parse(answer.body).error.code, -32700);
    });

    await t.step("an oversized body is 413", async () => {
      const big = JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { pad: "x".repeat(70_000) },
      });
      assert.equal((await post(open.url, big)).status, 413);
    });

    await t.step("an Origin outside the allowed ones is 403, a local one passes", async () => {
      const ping = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" });
      assert.equal((await post(open.url, ping, { origin: "https://evil.example" })).status, 403);
      const local = await post(open.url, initializeBody("curl"), {
        origin: "http://localhost:5173",
      });
      assert.equal(local.status, 200);
    });

    await t.step("a missing or wrong token is 401 when tokens are required", async () => {
      await assert.rejects(() => connectV1(locked.url), /Missing or invalid bearer token/);
      assert.equal((await post(locked.url, "{}")).status, 401);
      const wrong = await post(locked.url, "{}", { authorization: "Bearer nope" });
      assert.equal(wrong.status, 401);
      const ok = await connectV1(locked.url, { headers: { authorization: "Bearer letmein" } });
      assert.ok(ok.transport.sessionId);
      await ok.client.close();
    });

    await t.step(
      "a 2026-07-28 request whose Mcp-Method header disagrees with the body is 400",
      async () => {
        const body = JSON.stringify({
          jsonrpc: "2.0",
          id: 7,
          method: "tools/list",
          params: {
            _meta: {
              "io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientInfo": { name: "curl", version: "1" },
              "io.modelcontextprotocol/clientCapabilities": {},
            },
          },
        });
        const headers = { "mcp-protocol-version": "2026-07-28" };
        const agreeing = await post(open.url, body, { ...headers, "mcp-method": "tools/list" });
        assert.equal(agreeing.status, 200, agreeing.body);
        const mismatch = await post(open.url, body, { ...headers, "mcp-method": "tools/call" });
        assert.equal(mismatch.status, 400);
        assert.equal(JSON.parse(mismatch.body).error.code, -32020);
      },
    );

    await t.step("an unsupported MCP-Protocol-Version on a 2025 session is 400", async () => {
      const { client, transport } = await connectV1(open.url);
      const answer = await post(
        open.url,
        JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
        { "mcp-session-id": transport.sessionId!, "mcp-protocol-version": "1999-01-01" },
      );
      assert.equal(answer.status, 400);
      await client.close();
    });

    await t.step("DELETE ends a 2025 session: it is 404 afterwards", async () => {
      const { client, transport } = await connectV1(open.url);
      const sessionId = transport.sessionId!;
      await transport.terminateSession();
      await client.close();
      const answer = await post(
        open.url,
        JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/list" }),
        { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" },
      );
      assert.equal(answer.status, 404);
    });

    await t.step("/healthz, /readyz and /metrics answer on the ops port", async () => {
      const base = `http://127.0.0.1:${open.opsPort}`;
      assert.equal(await (await fetch(`${base}/healthz`)).text(), "ok\n");
      const ready = await fetch(`${base}/readyz`);
      await ready.body?.cancel();
      assert.equal(ready.status, 200);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /mcp_router_http_requests_total\{path="\/mcp",status="413"\} 1/);
    });
  } finally {
    await open.stop();
    await locked.stop();
    await Deno.remove(tokens);
    await consul.stop();
  }
});
