import assert from "node:assert/strict";
import { isLogLevel, passes, SessionLogLevels } from "./session_log_levels.ts";

Deno.test("passes() lets through messages at or above the threshold", async (t) => {
  const cases: [Parameters<typeof passes>[0], Parameters<typeof passes>[1], boolean][] = [
    ["debug", undefined, true],
    ["debug", "info", false],
    ["info", "info", true],
    ["warning", "info", true],
    ["error", "critical", false],
    ["emergency", "emergency", true],
  ];
  for (const [level, threshold, expected] of cases) {
    await t.step(`${level} against ${threshold}`, () => {
      assert.equal(passes(level, threshold), expected);
    });
  }
  assert.equal(isLogLevel("info"), true);
  assert.equal(isLogLevel("verbose"), false);
  assert.equal(isLogLevel(3), false);
});

Deno.test("SessionLogLevels keeps at most max sessions, the oldest going first", () => {
  const levels = new SessionLogLevels(2);
  levels.set("a", "info");
  levels.set("b", "error");
  levels.set("a", "debug");
  levels.set("c", "warning");
  assert.equal(levels.size, 2);
  assert.equal(levels.get("b"), undefined);
  assert.equal(levels.get("a"), "debug");
  levels.delete("a");
  assert.equal(levels.get("a"), undefined);
});
