import assert from "node:assert/strict";
import { planAutoscaleStatus } from "./autoscale.ts";
import type { StatusDocument } from "../../services/autoscaler/status.ts";

const NOW = 1_700_000_000_000;
const P = "platform.autoscale.";
const ECHO_LABELS = { [`${P}min`]: "1", [`${P}max`]: "3", [`${P}target`]: "20" };

function document(overrides: Partial<StatusDocument> = {}): StatusDocument {
  return {
    at: NOW - 5_000,
    error: null,
    intervalSeconds: 15,
    services: [{
      service: "s_echo-agent",
      shortName: "echo-agent",
      policyText: "",
      metric: "rps",
      target: 20,
      replicas: 1,
      running: 1,
      state: "scale_up",
      desired: 2,
      reason: "31 calls/s per instance (target 20): 1 -> 2",
      perInstance: 31.004,
      at: NOW - 5_000,
    }],
    ...overrides,
  };
}

Deno.test("planAutoscaleStatus() shows policy, metric, desired and why per service", () => {
  const { rows, note } = planAutoscaleStatus({
    stack: "s",
    labels: {
      "s_echo-agent": ECHO_LABELS,
      "s_weather-tool": { ...ECHO_LABELS, [`${P}metric`]: "inflight", [`${P}paused`]: "true" },
      "s_consul": {},
    },
    replicas: { "s_echo-agent": 1, "s_weather-tool": 2 },
    document: document(),
    now: NOW,
  });
  assert.equal(note, null);
  assert.deepEqual(rows, [
    {
      service: "echo-agent",
      policy: "1-3 replicas, 20 calls/s per instance, step 2, up 0s, down 300s",
      paused: false,
      replicas: 1,
      metric: "31 calls/s",
      desired: 2,
      state: "scale_up",
      why: "31 calls/s per instance (target 20): 1 -> 2",
    },
    {
      service: "weather-tool",
      policy: "1-3 replicas, 20 in flight per instance, step 2, up 0s, down 300s",
      paused: true,
      replicas: 2,
      metric: null,
      desired: null,
      state: "unknown",
      why: "not evaluated by the autoscaler yet",
    },
  ]);
});

Deno.test("planAutoscaleStatus() says when the autoscaler's status is missing, failed or stale", async (t) => {
  const base = { stack: "s", labels: { "s_echo-agent": ECHO_LABELS }, replicas: {}, now: NOW };
  await t.step("missing", () => {
    assert.match(
      planAutoscaleStatus({ ...base, document: null }).note ?? "",
      /has written no status/,
    );
  });
  await t.step("failed", () => {
    const failed = document({ error: 'Cannot list Swarm services through "/x": refused' });
    assert.match(
      planAutoscaleStatus({ ...base, document: failed }).note ?? "",
      /last evaluation failed: Cannot list Swarm services/,
    );
  });
  await t.step("stale", () => {
    const stale = document({ at: NOW - 120_000 });
    assert.match(planAutoscaleStatus({ ...base, document: stale }).note ?? "", /120s old/);
  });
  await t.step("an invalid policy is shown as such", () => {
    const { rows } = planAutoscaleStatus({
      ...base,
      labels: { "s_echo-agent": { [`${P}min`]: "1" } },
      document: null,
    });
    assert.match(rows[0].policy, /^invalid: .*max is missing/);
  });
});
