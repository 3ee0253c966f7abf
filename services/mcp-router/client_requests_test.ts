import assert from "node:assert/strict";
import { ClientRequests, isResponseBatch } from "./client_requests.ts";

Deno.test("isResponseBatch() accepts only JSON-RPC responses", async (t) => {
  const cases: [string, unknown, boolean][] = [
    ["a result", { jsonrpc: "2.0", id: "router-1", result: {} }, true],
    ["an error", { jsonrpc: "2.0", id: 1, error: { code: 1, message: "no" } }, true],
    ["a batch of results", [{ id: 1, result: {} }, { id: 2, result: {} }], true],
    ["a request", { jsonrpc: "2.0", id: 1, method: "ping" }, false],
    ["a mixed batch", [{ id: 1, result: {} }, { id: 2, method: "ping" }], false],
    ["an empty batch", [], false],
    ["null", null, false],
  ];
  for (const [name, body, expected] of cases) {
    await t.step(name, () => assert.equal(isResponseBatch(body), expected));
  }
});

Deno.test("ClientRequests delivers answers to the session that was asked, and only it", async () => {
  const requests = new ClientRequests(60_000);
  const { id, answer } = requests.open("session-a");
  assert.equal(requests.deliver("session-b", { id, result: { taken: true } }), false);
  assert.equal(requests.size, 1);
  assert.equal(requests.deliver("session-a", { id, result: { ok: true } }), true);
  assert.deepEqual(await answer, { result: { ok: true } });
  assert.equal(requests.size, 0);
  assert.equal(requests.deliver("session-a", { id, result: {} }), false);
});

Deno.test("ClientRequests turns malformed answers and timeouts into errors", async () => {
  const requests = new ClientRequests(60_000);
  const first = requests.open("s");
  requests.deliver("s", { id: first.id, result: [1] });
  assert.deepEqual(await first.answer, {
    error: { code: -32603, message: "The client's result is not an object" },
  });
  const second = requests.open("s");
  requests.deliver("s", { id: second.id, error: { code: -1, message: "declined" } });
  assert.deepEqual(await second.answer, { error: { code: -1, message: "declined" } });
  const short = new ClientRequests(1);
  const third = short.open("s");
  assert.equal("error" in await third.answer, true);
  const fourth = requests.open("s");
  requests.close();
  assert.equal("error" in await fourth.answer, true);
});
