import assert from "node:assert/strict";
import { percentile, summarizeCalls } from "./stats.ts";

Deno.test("percentile() uses the nearest rank", () => {
  const values = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
  assert.equal(percentile(values, 50), 5);
  assert.equal(percentile(values, 90), 9);
  assert.equal(percentile(values, 99), 10);
  assert.equal(percentile(values, 100), 10);
  assert.equal(percentile([], 50), 0);
});

Deno.test("summarizeCalls() counts failures as calls", () => {
  const summary = summarizeCalls([1, 2, 3], 2);
  assert.equal(summary.calls, 5);
  assert.equal(summary.failures, 2);
  assert.equal(summary.latencyMs.p50, 2);
});
