import assert from "node:assert/strict";
import { formatDuration, parseDurationMs } from "./duration.ts";

Deno.test("parseDurationMs() reads HAProxy's units, a bare number as ms", () => {
  assert.equal(parseDurationMs("250"), 250);
  assert.equal(parseDurationMs("250ms"), 250);
  assert.equal(parseDurationMs("30s"), 30_000);
  assert.equal(parseDurationMs("5m"), 300_000);
  assert.equal(parseDurationMs("1h"), 3_600_000);
  for (const bad of ["", "s", "1.5s", "-1s", "1d", "1 s", "1e3"]) {
    assert.equal(parseDurationMs(bad), null, bad);
  }
});

Deno.test("formatDuration() writes the largest unit that keeps the value whole", () => {
  assert.equal(formatDuration(2_500), "2500ms");
  assert.equal(formatDuration(30_000), "30s");
  assert.equal(formatDuration(90_000), "90s");
  assert.equal(formatDuration(120_000), "2m");
  assert.equal(formatDuration(3_600_000), "1h");
});
