import assert from "node:assert/strict";
import { clientKey, ClientRateLimit } from "./client_rate_limit.ts";

Deno.test("ClientRateLimit lets a burst through, then one per refill, per client", () => {
  const limit = new ClientRateLimit({ ratePerSecond: 2, burst: 3 });
  const at = 1_000_000;
  for (let i = 0; i < 3; i++) assert.deepEqual(limit.take("a", at), { allowed: true });
  assert.deepEqual(limit.take("a", at), { allowed: false, retryAfterSeconds: 1 });
  assert.deepEqual(limit.take("b", at), { allowed: true }, "another client has its own bucket");
  assert.deepEqual(limit.take("a", at + 500), { allowed: true });
  assert.equal(limit.take("a", at + 500).allowed, false);
  assert.equal(limit.take("a", at + 60_000).allowed, true);
});

Deno.test("ClientRateLimit forgets the least recently seen client past its size", () => {
  const limit = new ClientRateLimit({ ratePerSecond: 1, burst: 1, maxClients: 2 });
  limit.take("a", 0);
  limit.take("b", 0);
  limit.take("a", 0);
  limit.take("c", 0);
  assert.equal(limit.size, 2);
  assert.equal(limit.take("a", 0).allowed, false, "a was seen last, so b went");
  assert.equal(limit.take("b", 0).allowed, true);
  assert.throws(() => new ClientRateLimit({ ratePerSecond: 0, burst: 1 }), RangeError);
});

Deno.test("clientKey() is a digest of the Authorization header, else anonymous", () => {
  const request = (headers: Record<string, string>) =>
    new Request("http://router/mcp", { method: "DELETE", headers });
  assert.equal(clientKey(request({})), "anonymous");
  const one = clientKey(request({ authorization: "Bearer one" }));
  assert.match(one, /^[0-9a-f]{24}$/);
  assert.equal(clientKey(request({ authorization: "Bearer one" })), one);
  assert.notEqual(clientKey(request({ authorization: "Bearer two" })), one);
});
