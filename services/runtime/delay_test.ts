import assert from "node:assert/strict";
import { delay } from "./delay.ts";

Deno.test("delay() resolves after its time", async () => {
  let resolved = false;
  const waiting = delay(5).then(() => resolved = true);
  assert.equal(resolved, false);
  await waiting;
  assert.equal(resolved, true);
});

Deno.test("delay() resolves at once when its signal aborts, leaving no timer", async () => {
  const controller = new AbortController();
  // An hour-long timer left behind would fail this test under the ops sanitizer.
  const waiting = delay(3_600_000, { signal: controller.signal });
  controller.abort();
  await waiting;
  await delay(3_600_000, { signal: controller.signal });
});
