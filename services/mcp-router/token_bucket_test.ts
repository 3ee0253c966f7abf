import assert from "node:assert/strict";
import { TokenBucket } from "./token_bucket.ts";

Deno.test("TokenBucket starts full and refills at its rate up to the burst", () => {
  const bucket = new TokenBucket(10, 5, 0);
  for (let i = 0; i < 5; i++) assert.equal(bucket.take(1, 0), 0);
  assert.equal(bucket.take(1, 0), 100, "one token comes back after 100 ms at 10/s");
  assert.equal(bucket.take(1, 100), 0);
  assert.equal(bucket.tokens(10_000), 5, "never more than the burst");
  assert.ok(bucket.full(10_000));
});

Deno.test("TokenBucket.take() takes all or nothing and says how long to wait", async (t) => {
  await t.step("a batch bigger than what is left takes nothing", () => {
    const bucket = new TokenBucket(100, 10, 0);
    assert.equal(bucket.take(8, 0), 0);
    assert.equal(bucket.take(4, 0), 20);
    assert.equal(bucket.tokens(0), 2);
  });
  await t.step("the wait is capped at a full refill for a count over the burst", () => {
    const bucket = new TokenBucket(1, 2, 0);
    bucket.take(2, 0);
    assert.equal(bucket.take(50, 0), 2000);
  });
  await t.step("a clock stepping back adds nothing", () => {
    const bucket = new TokenBucket(1, 1, 5000);
    assert.equal(bucket.take(1, 5000), 0);
    assert.ok(bucket.take(1, 1000) > 0);
    assert.equal(bucket.tokens(5000), 0);
  });
  await t.step("giveBack() refunds up to the burst", () => {
    const bucket = new TokenBucket(1, 3, 0);
    bucket.take(3, 0);
    bucket.giveBack(5);
    assert.equal(bucket.tokens(0), 3);
  });
});
