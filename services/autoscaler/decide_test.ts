import assert from "node:assert/strict";
import { decide, type DecisionInput, pruneHistory } from "./decide.ts";
import type { Policy } from "./policy.ts";

const NOW = 1_000_000_000;
const POLICY: Policy = {
  min: 1,
  max: 5,
  metric: "rps",
  target: 10,
  upWindowSeconds: 0,
  downWindowSeconds: 60,
  maxStep: 2,
  program: "echo-agent",
  paused: false,
};

function input(overrides: {
  policy?: Partial<Policy>;
  replicas?: number;
  running?: number;
  updateState?: string | null;
  total?: number | string;
  history?: [secondsAgo: number, replicas: number][];
  watchedSeconds?: number;
}): DecisionInput {
  const replicas = overrides.replicas ?? 1;
  return {
    policy: { ...POLICY, ...overrides.policy },
    service: {
      replicas,
      running: overrides.running ?? replicas,
      updateState: overrides.updateState ?? null,
    },
    metric: typeof overrides.total === "string"
      ? { kind: "missing", reason: overrides.total }
      : { kind: "value", total: overrides.total ?? 10 },
    history: (overrides.history ?? []).map(([ago, count]) => ({
      at: NOW - ago * 1000,
      replicas: count,
    })),
    watchingSince: NOW - (overrides.watchedSeconds ?? 3600) * 1000,
    now: NOW,
  };
}

Deno.test("decide() follows the HPA rules", async (t) => {
  const cases: [string, Parameters<typeof input>[0], string, number, RegExp?][] = [
    ["at the target: steady", { replicas: 2, total: 20 }, "steady", 2, /10 calls\/s per instance/],
    ["within +10 %: steady", { replicas: 2, total: 22 }, "steady", 2],
    ["within -10 %: steady", { replicas: 2, total: 18 }, "steady", 2],
    ["just over the band: one more", { replicas: 2, total: 23 }, "scale_up", 3, /2 -> 3/],
    ["three times the target: 1 -> 3", { replicas: 1, total: 30 }, "scale_up", 3],
    [
      "bounded by max_step",
      { replicas: 1, total: 50 },
      "scale_up",
      3,
      /1 -> 3 \(of 5, step 2\)/,
    ],
    ["never above max", { replicas: 4, total: 500 }, "scale_up", 5],
    ["at max with more load: steady", { replicas: 5, total: 500 }, "steady", 5],
    ["max 2 is never exceeded", { policy: { max: 2 }, replicas: 2, total: 100 }, "steady", 2],
    ["no load, watched the window: down by a step", { replicas: 4, total: 0 }, "scale_down", 2],
    ["no load at min: steady", { replicas: 1, total: 0 }, "steady", 1],
    [
      "below min (a label changed): up to min",
      { policy: { min: 3 }, replicas: 1, total: 0 },
      "scale_up",
      3,
      /below min 3/,
    ],
    [
      "above max (a label changed): down",
      { policy: { max: 2 }, replicas: 4, total: 40 },
      "scale_down",
      2,
      /above max 2/,
    ],
    [
      "low load, but a higher recommendation within the down window",
      { replicas: 3, total: 10, history: [[30, 3], [50, 2]] },
      "stabilising",
      3,
      /3 within the down window of 60s/,
    ],
    [
      "low load, the high recommendation older than the window",
      { replicas: 3, total: 10, history: [[70, 3], [50, 2], [20, 1]] },
      "scale_down",
      2,
    ],
    [
      "low load, just started watching: the window is not over",
      { replicas: 3, total: 0, watchedSeconds: 20 },
      "stabilising",
      3,
      /watched 20s of the down window of 60s/,
    ],
    [
      "spike within the up window: the lowest recommendation wins",
      { policy: { upWindowSeconds: 30 }, replicas: 1, total: 40, history: [[10, 1]] },
      "stabilising",
      1,
      /up window of 30s/,
    ],
    [
      "load held for the up window: scale up to its lowest",
      { policy: { upWindowSeconds: 30 }, replicas: 1, total: 40, history: [[10, 3], [25, 2]] },
      "scale_up",
      2,
    ],
    ["paused", { policy: { paused: true }, replicas: 1, total: 100 }, "paused", 1, /paused/],
    [
      "a rolling update",
      { replicas: 1, total: 100, updateState: "updating" },
      "updating",
      1,
      /rolling update .*updating/,
    ],
    [
      "tasks not all running yet",
      { replicas: 3, running: 2, total: 100 },
      "converging",
      3,
      /2 of 3 tasks running/,
    ],
    [
      "no data: Prometheus is down",
      { replicas: 2, total: "Prometheus unreachable" },
      "no_data",
      2,
      /not scaling without data: Prometheus unreachable/,
    ],
    ["a negative metric is no data", { replicas: 2, total: -1 }, "no_data", 2],
    ["float noise does not add a replica", { replicas: 1, total: 30.0000000001 }, "scale_up", 3],
    [
      "inflight metric",
      { policy: { metric: "inflight", target: 4 }, replicas: 2, total: 16 },
      "scale_up",
      4,
      /8 in flight per instance/,
    ],
  ];
  for (const [name, overrides, state, desired, reason] of cases) {
    await t.step(name, () => {
      const decision = decide(input(overrides));
      assert.equal(decision.state, state, decision.reason);
      assert.equal(decision.desired, desired, decision.reason);
      if (reason) assert.match(decision.reason, reason);
      assert.ok(decision.desired >= Math.min(POLICY.min, overrides.replicas ?? 1));
    });
  }
});

Deno.test("decide() reports the recommendation to remember and the metric per instance", () => {
  const decision = decide(input({ replicas: 2, total: 50 }));
  assert.equal(decision.recommendation, 5);
  assert.equal(decision.perInstance, 25);
  assert.equal(decide(input({ total: "down" })).recommendation, null);
});

Deno.test("pruneHistory() keeps what the longest window can use", () => {
  const history = [0, 30, 59, 61, 600].map((ago) => ({ at: NOW - ago * 1000, replicas: 1 }));
  assert.deepEqual(
    pruneHistory(history, POLICY, NOW).map((entry) => (NOW - entry.at) / 1000),
    [0, 30, 59],
  );
});
