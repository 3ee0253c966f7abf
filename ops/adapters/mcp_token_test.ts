import assert from "node:assert/strict";
import {
  basicHeaders,
  fetchWithBearer,
  mcpTokenFile,
  readMcpToken,
  readStatsAuth,
} from "./mcp_token.ts";

Deno.test("readMcpToken() reads the stack's kept token, or the operator's first one", async () => {
  const root = await Deno.makeTempDir({ prefix: "mcp-token-test-" });
  try {
    assert.equal(await readMcpToken(root, { stack: "st" }), undefined);
    await Deno.mkdir(`${root}/.platform/secrets/st`, { recursive: true });
    await Deno.writeTextFile(`${root}/.platform/secrets/st/mcp-token`, "kept-token-0123456789\n");
    assert.equal(
      await readMcpToken(root, { env: { PLATFORM_STACK: "st" } }),
      "kept-token-0123456789",
    );
    await Deno.writeTextFile(
      `${root}/given`,
      "# ops\nfirst-token-0123456789\nsecond-token-012345\n",
    );
    const env = { PLATFORM_STACK: "st", PLATFORM_MCP_TOKENS_FILE: `${root}/given` };
    assert.equal(mcpTokenFile(root, { env }), `${root}/given`);
    assert.equal(await readMcpToken(root, { env }), "first-token-0123456789");
    await Deno.writeTextFile(`${root}/.platform/secrets/st/lb-stats-auth`, "platform:pw\n");
    assert.equal(await readStatsAuth(root, { stack: "st" }), "platform:pw");
    await assert.rejects(
      () => readStatsAuth(root, { env: { PLATFORM_STATS_AUTH_FILE: `${root}/missing` } }),
      /Cannot read/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("fetchWithBearer() adds the token to every request, keeping the other headers", async () => {
  const seen: Headers[] = [];
  const base = (_input: RequestInfo | URL, init?: RequestInit) => {
    seen.push(new Headers(init?.headers));
    return Promise.resolve(new Response("ok"));
  };
  await fetchWithBearer("t0ken", base)("http://x/mcp", { headers: { accept: "a" } });
  assert.equal(seen[0].get("authorization"), "Bearer t0ken");
  assert.equal(seen[0].get("accept"), "a");
  assert.equal(fetchWithBearer(undefined, base), base);
  assert.deepEqual(basicHeaders("u:p"), { authorization: `Basic ${btoa("u:p")}` });
});
