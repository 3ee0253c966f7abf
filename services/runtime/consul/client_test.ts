import assert from "node:assert/strict";
import { ConsulClient, ConsulError, consulPath } from "./client.ts";
import { kvPath } from "./kv.ts";

Deno.test("consulPath() keeps every value one URL-encoded segment", () => {
  assert.equal(
    consulPath("/v1/health/service", "../../catalog/nodes"),
    "/v1/health/service/..%2F..%2Fcatalog%2Fnodes",
  );
  assert.equal(consulPath("/v1/agent/service", "a\nb?c#d"), "/v1/agent/service/a%0Ab%3Fc%23d");
  for (const step of ["..", ".", ""]) {
    assert.throws(() => consulPath("/v1/health/service", step), RangeError);
  }
  const client = new ConsulClient("127.0.0.1:8500/");
  assert.equal(
    client.url(consulPath("/v1/health/service", "../../catalog/nodes"), { passing: "" }),
    "http://127.0.0.1:8500/v1/health/service/..%2F..%2Fcatalog%2Fnodes?passing",
  );
  assert.equal(kvPath("platform/a b/"), "/v1/kv/platform/a%20b/");
});

Deno.test("ConsulClient sends its token and reports failures with a typed code", async () => {
  const seen: (string | null)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    seen.push(request.headers.get("x-consul-token"));
    return new URL(request.url).pathname === "/v1/denied"
      ? new Response("Permission denied", { status: 403 })
      : Response.json({ ok: true }, { headers: { "X-Consul-Index": "42" } });
  });
  try {
    const client = new ConsulClient(`http://127.0.0.1:${server.addr.port}`, { token: "t-1" });
    assert.deepEqual(await client.get("/v1/ok"), { ok: true });
    const answer = await client.blockingGet("/v1/ok", { index: 0, waitSeconds: 1 });
    assert.equal(answer.index, 42);
    await assert.rejects(
      () => client.get("/v1/denied"),
      (error: unknown) => error instanceof ConsulError && error.status === 403,
    );
    await client.withToken(undefined).get("/v1/ok");
    assert.deepEqual(seen, ["t-1", "t-1", "t-1", null]);
  } finally {
    await server.shutdown();
  }
  const closed = new ConsulClient("http://127.0.0.1:1", { timeoutMs: 2_000 });
  await assert.rejects(
    () => closed.get("/v1/status/leader"),
    (error: unknown) => error instanceof ConsulError && error.code === "CONSUL_UNREACHABLE",
  );
});
