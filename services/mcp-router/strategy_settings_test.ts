import assert from "node:assert/strict";
import { parseKvStrategies, STRATEGY_KV_PREFIX } from "./strategy_settings.ts";

function entry(key: string, value: string | null): { Key: string; Value: string | null } {
  return { Key: key, Value: value === null ? null : btoa(value) };
}

Deno.test("parseKvStrategies() reads one strategy per service and reports bad values", () => {
  const { strategies, problems } = parseKvStrategies([
    entry(STRATEGY_KV_PREFIX, null),
    entry(`${STRATEGY_KV_PREFIX}agent-echo`, "least-outstanding\n"),
    entry(`${STRATEGY_KV_PREFIX}tool-weather`, "Weighted"),
    entry(`${STRATEGY_KV_PREFIX}worker-itinerary`, "fastest"),
    entry(`${STRATEGY_KV_PREFIX}nested/key`, "random"),
    entry("elsewhere/agent-echo", "random"),
  ]);
  assert.deepEqual([...strategies], [
    ["agent-echo", "least-outstanding"],
    ["tool-weather", "weighted"],
  ]);
  assert.equal(problems.length, 1);
  assert.match(problems[0], /platform\/lb-strategy\/worker-itinerary/);
});

Deno.test("parseKvStrategies() refuses a body that is not a KV listing", () => {
  assert.throws(() => parseKvStrategies({}), TypeError);
});
