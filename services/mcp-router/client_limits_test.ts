import assert from "node:assert/strict";
import { type CallTicket, ClientLimits, isRefusal, type Refusal } from "./client_limits.ts";

const SETTINGS = {
  clientRate: 10,
  clientBurst: 10,
  clientConcurrency: 4,
  clientStreams: 2,
  maxClients: 3,
  maxInFlight: 6,
};

function ticket(value: CallTicket | Refusal): CallTicket {
  assert.ok(!isRefusal(value), `refused: ${JSON.stringify(value)}`);
  return value;
}

function refusal(value: unknown): Refusal {
  assert.ok(isRefusal(value as Refusal), "admitted, expected a refusal");
  return value as Refusal;
}

Deno.test("ClientLimits refuses a client over its concurrency with 429, others still pass", () => {
  const limits = new ClientLimits(SETTINGS);
  const held = [1, 2, 3, 4].map(() => ticket(limits.admitCalls("a", 1, 0)));
  const over = refusal(limits.admitCalls("a", 1, 0));
  assert.equal(over.status, 429);
  assert.equal(over.reason, "client_concurrency");
  assert.equal(over.retryAfterSeconds, 1);
  ticket(limits.admitCalls("b", 1, 0)).release();
  held[0].release();
  held[0].release();
  ticket(limits.admitCalls("a", 1, 0));
  assert.equal(limits.inFlight, 4);
});

Deno.test("ClientLimits refuses a client over its rate with a Retry-After from the bucket", () => {
  const limits = new ClientLimits({ ...SETTINGS, clientConcurrency: 100, maxInFlight: 100 });
  for (let i = 0; i < 10; i++) ticket(limits.admitCalls("a", 1, 0)).release();
  const over = refusal(limits.admitCalls("a", 1, 0));
  assert.equal(over.reason, "client_rate");
  assert.equal(over.retryAfterSeconds, 1);
  ticket(limits.admitCalls("a", 1, 100)).release();
});

Deno.test("ClientLimits answers 503 when the router's calls in flight are at the cap", () => {
  const limits = new ClientLimits(SETTINGS);
  ticket(limits.admitCalls("a", 4, 0));
  ticket(limits.admitCalls("b", 2, 0));
  const full = refusal(limits.admitCalls("c", 1, 0));
  assert.equal(full.status, 503);
  assert.equal(full.reason, "router_in_flight");
});

Deno.test("CallTicket.add() counts a batch's members and keeps what it held when refused", () => {
  const limits = new ClientLimits(SETTINGS);
  const batch = ticket(limits.admitCalls("a", 1, 0));
  assert.equal(batch.add(2, 0), undefined);
  assert.equal(batch.calls, 3);
  assert.equal(refusal(batch.add(2, 0)).reason, "client_concurrency");
  assert.equal(batch.calls, 3);
  batch.release();
  assert.equal(limits.inFlight, 0);
});

Deno.test("ClientLimits bounds streams per client and counts them against the rate", () => {
  const limits = new ClientLimits(SETTINGS);
  const first = limits.admitStream("a", 0);
  const second = limits.admitStream("a", 0);
  assert.ok(!isRefusal(first) && !isRefusal(second));
  assert.equal(refusal(limits.admitStream("a", 0)).reason, "client_streams");
  first.release();
  assert.ok(!isRefusal(limits.admitStream("a", 0)));
});

Deno.test("ClientLimits keeps at most maxClients, forgetting the least recently seen idle one", async (t) => {
  await t.step("idle clients make room", () => {
    const limits = new ClientLimits(SETTINGS);
    for (let i = 0; i < 1000; i++) {
      ticket(limits.admitCalls(`10.0.${i >> 8}.${i & 255}`, 1, 0)).release();
    }
    assert.equal(limits.clients, 3);
  });
  await t.step("a recently seen client is kept, its bucket with it", () => {
    const limits = new ClientLimits({ ...SETTINGS, clientConcurrency: 100, maxInFlight: 100 });
    for (let i = 0; i < 10; i++) ticket(limits.admitCalls("a", 1, 0)).release();
    ticket(limits.admitCalls("b", 1, 0)).release();
    ticket(limits.admitCalls("c", 1, 0)).release();
    refusal(limits.admitCalls("a", 1, 0));
    ticket(limits.admitCalls("d", 1, 0)).release();
    // "b" was the least recently seen and went; "a" is still over its rate.
    assert.equal(refusal(limits.admitCalls("a", 1, 0)).reason, "client_rate");
  });
  await t.step("a table full of busy clients refuses new ones with 503 instead of growing", () => {
    const limits = new ClientLimits(SETTINGS);
    for (const client of ["a", "b", "c"]) ticket(limits.admitCalls(client, 1, 0));
    const full = refusal(limits.admitCalls("d", 1, 0));
    assert.equal(full.status, 503);
    assert.equal(full.reason, "router_clients");
    assert.equal(limits.clients, 3);
  });
});
