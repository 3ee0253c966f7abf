/**
 * The evaluation loop with an in-memory Swarm and scripted metric readings: the engine is shared,
 * so the scaling path is exercised here (unit test) and on a deployed stack (end to end).
 */
import assert from "node:assert/strict";
import { createLogger } from "../runtime/logger.ts";
import { Autoscaler } from "./autoscaler.ts";
import type { MetricReading } from "./decide.ts";
import type { SwarmPort, SwarmService } from "./swarm.ts";

const P = "platform.autoscale.";
const POLICY_LABELS = {
  [`${P}min`]: "1",
  [`${P}max`]: "5",
  [`${P}target`]: "10",
  [`${P}down_window`]: "60s",
  [`${P}max_step`]: "2",
  "com.docker.stack.namespace": "s",
};

class MemorySwarm implements SwarmPort {
  services = new Map<string, SwarmService>();
  scaled: [string, number][] = [];
  failList = false;
  failScale = false;

  add(shortName: string, replicas: number, labels: Record<string, string> = POLICY_LABELS) {
    this.services.set(`s_${shortName}`, {
      id: shortName,
      name: `s_${shortName}`,
      shortName,
      version: 1,
      labels,
      replicas,
      running: replicas,
      updateState: null,
      spec: {},
    });
  }

  list(): Promise<SwarmService[]> {
    if (this.failList) return Promise.reject(new Error("Cannot list Swarm services: boom"));
    return Promise.resolve([...this.services.values()]);
  }

  scale(service: SwarmService, replicas: number): Promise<void> {
    if (this.failScale) return Promise.reject(new Error("update out of sequence"));
    this.scaled.push([service.name, replicas]);
    this.services.set(service.name, { ...service, replicas, running: replicas });
    return Promise.resolve();
  }
}

function setup(readings: Record<string, MetricReading>, dryRun = false) {
  const swarm = new MemorySwarm();
  const lines: Record<string, unknown>[] = [];
  let clock = 1_000_000;
  const autoscaler = new Autoscaler({
    swarm,
    readMetric: (policy) => Promise.resolve(readings[policy.program]),
    logger: createLogger({ write: (line) => lines.push(JSON.parse(line)) }),
    now: () => clock,
    dryRun,
  });
  return { swarm, lines, autoscaler, advance: (seconds: number) => clock += seconds * 1000 };
}

Deno.test("Autoscaler scales a loaded service up, logs and exports the decision", async () => {
  const { swarm, lines, autoscaler } = setup({ echo: { kind: "value", total: 30 } });
  swarm.add("echo", 1);
  const [status] = await autoscaler.evaluate();
  assert.deepEqual(swarm.scaled, [["s_echo", 3]]);
  assert.equal(status.state, "scale_up");
  assert.equal(status.desired, 3);
  assert.equal(status.perInstance, 30);
  const [line] = lines.filter((entry) => entry.msg === "decision");
  assert.equal(line.service, "s_echo");
  assert.equal(line.metric, 30);
  assert.equal(line.replicas, 1);
  assert.equal(line.desired, 3);
  assert.match(String(line.policy), /1-5 replicas, 10 calls\/s per instance/);
  const text = autoscaler.renderMetrics();
  assert.match(text, /platform_autoscaler_desired_replicas\{service="echo"\} 3/);
  assert.match(
    text,
    /platform_autoscaler_scalings_total\{service="echo",direction="up",outcome="ok"\} 1/,
  );
  assert.match(text, /platform_autoscaler_state\{service="echo",state="scale_up"\} 1/);

  // The next evaluation sees three instances sharing the load: nothing more to do.
  const [again] = await autoscaler.evaluate();
  assert.equal(again.state, "steady");
  assert.equal(swarm.scaled.length, 1);
});

Deno.test("Autoscaler scales down only after the down window of low load", async () => {
  const { swarm, autoscaler, advance } = setup({ echo: { kind: "value", total: 0 } });
  swarm.add("echo", 3);
  for (let elapsed = 0; elapsed < 60; elapsed += 15) {
    const [status] = await autoscaler.evaluate();
    assert.equal(status.state, "stabilising", status.reason);
    advance(15);
  }
  const [status] = await autoscaler.evaluate();
  assert.equal(status.state, "scale_down", status.reason);
  assert.deepEqual(swarm.scaled, [["s_echo", 1]]);
});

Deno.test("Autoscaler holds and says why: no data, invalid policy, paused", async () => {
  const { swarm, autoscaler } = setup({
    echo: { kind: "missing", reason: 'Cannot reach Prometheus at "http://prometheus:9090"' },
  });
  swarm.add("echo", 1);
  swarm.add("weather", 1, { [`${P}min`]: "2", [`${P}max`]: "1", [`${P}target`]: "5" });
  swarm.add("itinerary", 1, { [`${P}paused`]: "true" });
  const statuses = await autoscaler.evaluate();
  assert.deepEqual(swarm.scaled, []);
  assert.deepEqual(statuses.map((status) => [status.shortName, status.state]), [
    ["echo", "no_data"],
    ["weather", "invalid_policy"],
  ]);
  assert.match(statuses[0].reason, /not scaling without data: Cannot reach Prometheus/);
  assert.match(statuses[1].reason, /max \(1\) is below min \(2\)/);
});

Deno.test("Autoscaler reports a scale Swarm refuses and a Swarm it cannot read", async () => {
  const { swarm, lines, autoscaler } = setup({ echo: { kind: "value", total: 30 } });
  swarm.add("echo", 1);
  swarm.failScale = true;
  const [status] = await autoscaler.evaluate();
  assert.equal(status.state, "scale_failed");
  assert.match(status.reason, /Swarm refused: update out of sequence/);
  assert.ok(lines.some((line) => line.level === "error" && line.msg === "decision"));

  swarm.failList = true;
  await autoscaler.evaluate();
  assert.match(autoscaler.statusDocument().error ?? "", /boom/);
  assert.match(
    autoscaler.renderMetrics(),
    /platform_autoscaler_evaluations_total\{outcome="swarm_error"\} 1/,
  );
});

Deno.test("Autoscaler in dry run decides without scaling", async () => {
  const { swarm, autoscaler } = setup({ echo: { kind: "value", total: 30 } }, true);
  swarm.add("echo", 1);
  const [status] = await autoscaler.evaluate();
  assert.deepEqual(swarm.scaled, []);
  assert.equal(status.desired, 3);
  assert.match(status.reason, /dry run: not applied/);
});

Deno.test("Autoscaler's status document reads back through parseStatusDocument()", async () => {
  const { parseStatusDocument } = await import("./status.ts");
  const { swarm, autoscaler } = setup({ echo: { kind: "value", total: 12 } });
  swarm.add("echo", 1);
  await autoscaler.evaluate();
  const document = parseStatusDocument(JSON.parse(JSON.stringify(autoscaler.statusDocument())));
  assert.equal(document.services[0].metric, "rps");
  assert.equal(document.services[0].target, 10);
  assert.equal(document.services[0].desired, 2);
  assert.throws(
    () => parseStatusDocument({ at: 1, intervalSeconds: 1, services: [{ service: 7 }] }),
    /services\[0\]\.service is not a string/,
  );
});
