import assert from "node:assert/strict";
import { backoffDelay } from "./backoff.ts";

Deno.test("backoffDelay() doubles from the base up to the cap", async (t) => {
  const cases: [number, number][] = [[0, 100], [1, 200], [2, 400], [3, 800], [4, 1000], [50, 1000]];
  for (const [attempt, expected] of cases) {
    await t.step(`attempt ${attempt}`, () => {
      assert.equal(backoffDelay(attempt, { baseMs: 100, maxMs: 1000 }), expected);
    });
  }
});

Deno.test("backoffDelay() keeps jittered delays within their share of the delay", async (t) => {
  const cases: [number, number, number][] = [[0, 0.5, 400], [0.999, 0.5, 800], [0, 1, 0]];
  for (const [random, jitter, expected] of cases) {
    await t.step(`random ${random}, jitter ${jitter}`, () => {
      const delay = backoffDelay(3, { baseMs: 100, maxMs: 5000, jitter, random: () => random });
      assert.ok(Math.abs(delay - expected) < 1, `${delay}`);
    });
  }
});
