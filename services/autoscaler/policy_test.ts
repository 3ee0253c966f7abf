import assert from "node:assert/strict";
import { describePolicy, parsePolicy } from "./policy.ts";

const P = "platform.autoscale.";

Deno.test("parsePolicy() reads a full policy", () => {
  const result = parsePolicy({
    [`${P}min`]: "1",
    [`${P}max`]: "5",
    [`${P}metric`]: "inflight",
    [`${P}target`]: "2.5",
    [`${P}up_window`]: "15s",
    [`${P}down_window`]: "2m",
    [`${P}max_step`]: "3",
    [`${P}paused`]: "TRUE",
    "com.docker.stack.namespace": "agent-platform",
  }, "echo-agent");
  assert.deepEqual(result, {
    kind: "valid",
    policy: {
      min: 1,
      max: 5,
      metric: "inflight",
      target: 2.5,
      upWindowSeconds: 15,
      downWindowSeconds: 120,
      maxStep: 3,
      program: "echo-agent",
      paused: true,
    },
  });
});

Deno.test("parsePolicy() fills defaults for the optional labels", () => {
  const result = parsePolicy({ [`${P}min`]: "2", [`${P}max`]: "4", [`${P}target`]: "20" }, "x");
  assert.equal(result.kind, "valid");
  if (result.kind !== "valid") return;
  assert.equal(result.policy.metric, "rps");
  assert.equal(result.policy.upWindowSeconds, 0);
  assert.equal(result.policy.downWindowSeconds, 300);
  assert.equal(result.policy.maxStep, 2);
  assert.equal(result.policy.paused, false);
  assert.equal(
    describePolicy(result.policy),
    "2-4 replicas, 20 calls/s per instance, step 2, up 0s, down 300s",
  );
});

Deno.test("parsePolicy() without min and max labels: never scaled", () => {
  assert.deepEqual(parsePolicy({ [`${P}target`]: "5" }, "x"), { kind: "none" });
  assert.deepEqual(parsePolicy({}, "x"), { kind: "none" });
});

Deno.test("parsePolicy() lists every problem of an invalid policy", async (t) => {
  const cases: [string, Record<string, string>, RegExp[]][] = [
    ["min without max", { min: "1", target: "5" }, [/max is missing/]],
    ["max below min", { min: "3", max: "2", target: "5" }, [/max \(2\) is below min \(3\)/]],
    ["zero min", { min: "0", max: "2", target: "5" }, [/min must be an integer from 1 to 50/]],
    ["huge max", { min: "1", max: "5000", target: "5" }, [/max must be an integer from 1 to 50/]],
    ["no target", { min: "1", max: "2" }, [/target is missing/]],
    ["zero target", { min: "1", max: "2", target: "0" }, [/target must be a number above 0/]],
    ["negative target", { min: "1", max: "2", target: "-1" }, [/target must be a number/]],
    ["unknown metric", { min: "1", max: "2", target: "1", metric: "cpu" }, [/metric must be/]],
    [
      "bad windows and step",
      { min: "1", max: "2", target: "1", up_window: "soon", down_window: "2h", max_step: "0" },
      [/up_window must be a duration/, /down_window must be a duration/, /max_step must be/],
    ],
    [
      "a program that would change the query",
      { min: "1", max: "2", target: "1", program: 'x"} or vector(1)' },
      [/program must be letters/],
    ],
    ["paused maybe", { min: "1", max: "2", target: "1", paused: "maybe" }, [/paused must be/]],
  ];
  for (const [name, labels, expected] of cases) {
    await t.step(name, () => {
      const prefixed = Object.fromEntries(Object.entries(labels).map(([k, v]) => [`${P}${k}`, v]));
      const result = parsePolicy(prefixed, "echo-agent");
      assert.equal(result.kind, "invalid");
      if (result.kind !== "invalid") return;
      assert.equal(result.problems.length, expected.length, result.problems.join("; "));
      expected.forEach((pattern, i) => assert.match(result.problems[i], pattern));
    });
  }
});
