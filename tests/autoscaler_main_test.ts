/**
 * The autoscaler process with real Consul, a real Prometheus and the real Docker engine, in dry run
 * and scoped to a stack that does not exist: the engine is shared, so this process only reads it.
 */
import assert from "node:assert/strict";
import { parseStatusDocument } from "../services/autoscaler/status.ts";
import { freePort, startConsulDev } from "./helpers/consul_dev.ts";
import { activeTargets, queryValue, startPrometheus } from "./helpers/prometheus_dev.ts";
import { healthEntries, spawnDeno } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";

function startAutoscaler(env: Record<string, string>) {
  const port = freePort();
  const child = spawnDeno(["services/autoscaler/main.ts"], {
    env: {
      METRICS_PORT: String(port),
      ADVERTISE_ADDR: "127.0.0.1",
      EVALUATION_INTERVAL: "1s",
      DRY_RUN: "true",
      AUTOSCALE_STACK: "autoscale-test-no-such-stack",
      ...env,
    },
  });
  return { ...child, url: `http://127.0.0.1:${port}` };
}

async function readKvStatus(consulUrl: string) {
  const response = await fetch(`${consulUrl}/v1/kv/platform/autoscaler/status?raw`);
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  return parseStatusDocument(await response.json());
}

Deno.test("the autoscaler registers, is scraped, and publishes its status", async (t) => {
  const consul = await startConsulDev();
  const prometheus = await startPrometheus({
    CONSUL_HTTP_ADDR: consul.url,
    LB_TARGETS: `127.0.0.1:${freePort()}`,
    PROMETHEUS_SCRAPE_INTERVAL: "1s",
  });
  const autoscaler = startAutoscaler({
    CONSUL_HTTP_ADDR: consul.url,
    PROMETHEUS_URL: prometheus.url,
    SERVICE_ID: "autoscaler-t1",
  });
  try {
    await t.step("registered in Consul with its metrics port, check passing", async () => {
      const [entry] = await eventually(
        "a passing registration",
        () => healthEntries(consul.url, "platform-autoscaler"),
        (entries) =>
          entries.length === 1 && entries[0].Checks.every((check) => check.Status === "passing"),
      );
      assert.equal(entry.Service.ID, "autoscaler-t1");
      assert.equal(entry.Service.Meta.metrics_port, new URL(autoscaler.url).port);
      assert.deepEqual(entry.Service.Tags, ["autoscaler"]);
    });

    await t.step("Prometheus scrapes it through Consul", async () => {
      await eventually(
        "the autoscaler up",
        () => activeTargets(prometheus.url),
        (targets) =>
          targets.some((target) =>
            target.labels.instance === "autoscaler-t1" && target.health === "up"
          ),
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      const evaluations = await eventually(
        "evaluations in Prometheus",
        () =>
          queryValue(
            prometheus.url,
            'platform_autoscaler_evaluations_total{program="autoscaler",outcome="ok"}',
          ),
        (value) => value !== undefined && value > 0,
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      assert.ok(evaluations! > 0);
    });

    await t.step("its status is served and written to Consul KV", async () => {
      const response = await fetch(`${autoscaler.url}/status`);
      const served = parseStatusDocument(await response.json());
      assert.equal(served.error, null);
      assert.deepEqual(served.services, []);
      assert.equal(served.intervalSeconds, 1);
      const stored = await eventually("a KV status", () => readKvStatus(consul.url), Boolean);
      assert.equal(stored?.error, null);
    });

    await t.step("SIGTERM deregisters and exits 0", async () => {
      const status = await autoscaler.stop();
      assert.equal(status.code, 0, autoscaler.output());
      assert.deepEqual(await healthEntries(consul.url, "platform-autoscaler"), []);
    });
  } finally {
    await autoscaler.stop();
    await prometheus.stop();
    await consul.stop();
  }
});

Deno.test("without a Docker engine the autoscaler scales nothing and says why", async () => {
  const consul = await startConsulDev();
  const autoscaler = startAutoscaler({
    CONSUL_HTTP_ADDR: consul.url,
    PROMETHEUS_URL: "http://127.0.0.1:1",
    DOCKER_SOCKET: "/nonexistent/docker.sock",
    DRY_RUN: "false",
  });
  try {
    const stored = await eventually(
      "a KV status with an error",
      () => readKvStatus(consul.url),
      (document) => document?.error !== null && document?.error !== undefined,
    );
    assert.match(stored!.error!, /Cannot list Swarm services through "\/nonexistent\/docker.sock"/);
    assert.match(autoscaler.output(), /"msg":"cannot read Swarm, nothing scaled"/);
  } finally {
    await autoscaler.stop();
    await consul.stop();
  }
});

Deno.test("a bad environment stops the autoscaler with exit code 2", async () => {
  const child = spawnDeno(["services/autoscaler/main.ts"], {
    env: { EVALUATION_INTERVAL: "never", PROMETHEUS_URL: "ftp://x" },
  });
  const status = await child.exited;
  assert.equal(status.code, 2);
  assert.match(child.output(), /error: autoscaler: Invalid configuration: PROMETHEUS_URL must be/);
  assert.match(child.output(), /EVALUATION_INTERVAL must be a duration/);
});
