import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import { parseEnvAssignments, planUpdateArgs, updateOutcome } from "./update.ts";

Deno.test("planUpdateArgs() maps image, env and force to docker service update flags", () => {
  assert.deepEqual(planUpdateArgs({ image: "p/x:1", env: { A: "1" }, force: true }), [
    "--image",
    "p/x:1",
    "--no-resolve-image",
    "--env-add",
    "A=1",
    "--force",
  ]);
  assert.deepEqual(planUpdateArgs({ env: {}, force: true }), ["--force"]);
});

Deno.test("planUpdateArgs() refuses an update that changes nothing", () => {
  assert.throws(() => planUpdateArgs({ env: {}, force: false }), UsageError);
});

Deno.test("parseEnvAssignments() reads KEY=VALUE and rejects the rest", () => {
  assert.deepEqual(parseEnvAssignments(["A=1", "B=x=y", "C="]), { A: "1", B: "x=y", C: "" });
  assert.throws(() => parseEnvAssignments(["=1"]), UsageError);
  assert.throws(() => parseEnvAssignments(["NOEQUALS"]), UsageError);
});

Deno.test("updateOutcome() reads Swarm's update states", async (t) => {
  const cases: [string | undefined, string][] = [
    [undefined, "none"],
    ["updating", "updating"],
    ["completed", "completed"],
    ["rollback_started", "rolling-back"],
    ["rollback_completed", "rolled-back"],
    ["paused", "paused"],
    ["rollback_paused", "paused"],
  ];
  for (const [state, outcome] of cases) {
    await t.step(`${state} is ${outcome}`, () => assert.equal(updateOutcome(state), outcome));
  }
});
