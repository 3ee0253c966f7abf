import assert from "node:assert/strict";
import { instanceWeightKey, parseInstanceWeight } from "./instance_weight.ts";

Deno.test("parseInstanceWeight() takes integers from 1 to 256 and nothing else", async (t) => {
  const cases: [string, number | undefined][] = [
    ["1", 1],
    [" 5\n", 5],
    ["256", 256],
    ["0", undefined],
    ["257", undefined],
    ["-3", undefined],
    ["2.5", undefined],
    ["", undefined],
    ["1e2", undefined],
    ["5; drop", undefined],
  ];
  for (const [text, expected] of cases) {
    await t.step(JSON.stringify(text), () => assert.equal(parseInstanceWeight(text), expected));
  }
});

Deno.test("instanceWeightKey() names the key under the service", () => {
  assert.equal(instanceWeightKey("agent-echo", "echo-1"), "platform/weights/agent-echo/echo-1");
});
