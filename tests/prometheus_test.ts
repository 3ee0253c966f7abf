/**
 * The Prometheus container's program with real Debian `prometheus`, real Consul, real services, a
 * real router and real HAProxy (`lb sync` with stats auth): every target is discovered through
 * Consul without per-service configuration, and is up.
 */
import assert from "node:assert/strict";
import { renderPrometheusConfig } from "../prometheus/config.ts";
import { connect } from "./helpers/capability_client.ts";
import { startConsulDev } from "./helpers/consul_dev.ts";
import {
  type ActiveTarget,
  activeTargets,
  queryValue,
  startPrometheus,
} from "./helpers/prometheus_dev.ts";
import {
  healthEntries,
  passingIds,
  spawnDeno,
  spawnLbSync,
  startService,
} from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { startRouter } from "./router_harness.ts";

const TEMPLATE = await Deno.readTextFile(
  new URL("../templates/prometheus.yml.hbs", import.meta.url),
);

Deno.test("promtool accepts the config the stack renders", async () => {
  const dir = await Deno.makeTempDir({ prefix: "promtool-test-" });
  try {
    const path = `${dir}/prometheus.yml`;
    await Deno.writeTextFile(`${dir}/password`, "secret");
    await Deno.writeTextFile(
      path,
      renderPrometheusConfig(TEMPLATE, {
        sdUrl: "http://127.0.0.1:9091/v1/targets",
        lb: { dnsNames: ["tasks.lb"], port: 8404 },
        lbAuth: { username: "ops", passwordFile: `${dir}/password` },
      }),
    );
    const output = await new Deno.Command("promtool", { args: ["check", "config", path] })
      .output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, text);
    assert.match(text, /SUCCESS/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Prometheus finds the services, the router, HAProxy and itself, all up", async (t) => {
  const consul = await startConsulDev();
  const dir = await Deno.makeTempDir({ prefix: "prometheus-lb-" });
  const authFile = `${dir}/stats-auth`;
  await Deno.writeTextFile(authFile, `ops:pa:ss "$HOME"\n`);
  const lb = spawnLbSync(consul.url, dir, { LB_STATS_AUTH_FILE: authFile });
  const statsPort = lb.statsPort;
  const echo = startService("echo-agent", { consulUrl: consul.url, id: "echo-agent-p1" });
  const weather = startService("weather-tool", { consulUrl: consul.url, id: "weather-tool-p1" });
  const router = await startRouter(consul.url, "mcp-router-p1");
  const prometheus = await startPrometheus({
    CONSUL_HTTP_ADDR: consul.url,
    LB_TARGETS: `127.0.0.1:${statsPort}`,
    LB_STATS_AUTH_FILE: authFile,
    PROMETHEUS_SCRAPE_INTERVAL: "1s",
  });
  try {
    await eventually(
      "both services passing",
      async () => [
        ...await passingIds(consul.url, "agent-echo"),
        ...await passingIds(consul.url, "tool-weather"),
      ],
      (ids) => ids.length === 2,
    );

    let targets: ActiveTarget[] = [];
    await t.step("five targets, each up", async () => {
      targets = await eventually(
        "five targets up",
        () => activeTargets(prometheus.url),
        (list) => list.length === 5 && list.every((target) => target.health === "up"),
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      const summary = targets.map((target) =>
        [target.scrapePool, target.labels.instance, target.labels.service ?? "-"].join(" ")
      ).sort();
      assert.deepEqual(summary, [
        `haproxy 127.0.0.1:${statsPort} -`,
        "mcp-router mcp-router-p1 mcp-router",
        `prometheus localhost:${prometheus.port} -`,
        "services echo-agent-p1 agent-echo",
        "services weather-tool-p1 tool-weather",
      ]);
    });

    await t.step("the services job scrapes each instance's registered metrics port", async () => {
      for (const target of targets.filter((each) => each.scrapePool === "services")) {
        const [entry] = (await healthEntries(consul.url, target.labels.service))
          .filter((each) => each.Service.ID === target.labels.instance);
        assert.equal(
          target.scrapeUrl,
          `http://127.0.0.1:${entry.Service.Meta.metrics_port}/metrics`,
        );
        assert.equal(target.labels.program, entry.Service.Meta.program);
      }
    });

    await t.step("HAProxy's metrics were read with the stats credentials", async () => {
      const value = await queryValue(prometheus.url, 'up{job="haproxy"}');
      assert.equal(value, 1);
      const unauthenticated = await fetch(`http://127.0.0.1:${statsPort}/metrics`);
      await unauthenticated.body?.cancel();
      assert.equal(unauthenticated.status, 401);
    });

    await t.step("calls show up in PromQL by program", async () => {
      const client = connect(echo.address);
      for (let i = 0; i < 5; i++) await client.invoke("echo", { message: `p${i}` });
      client.close();
      await eventually(
        "5 calls in Prometheus",
        () =>
          queryValue(
            prometheus.url,
            'sum(platform_service_calls_total{program="echo-agent",outcome="OK"})',
          ),
        (value) => value === 5,
        { timeoutMs: 15_000, intervalMs: 100 },
      );
    });

    await t.step("a new instance is found without any change", async () => {
      const second = startService("echo-agent", { consulUrl: consul.url, id: "echo-agent-p2" });
      try {
        await eventually(
          "the second echo up",
          () => activeTargets(prometheus.url),
          (list) =>
            list.some((target) =>
              target.labels.instance === "echo-agent-p2" && target.health === "up"
            ),
          { timeoutMs: 30_000, intervalMs: 100 },
        );
      } finally {
        await second.stop();
      }
    });

    await t.step("SIGTERM stops Prometheus and its wrapper with exit code 0", async () => {
      const status = await prometheus.stop();
      assert.equal(status.code, 0, prometheus.output());
    });
  } finally {
    await prometheus.stop();
    await Promise.all([echo.stop(), weather.stop(), router.stop(), lb.stop()]);
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bad environment stops the Prometheus program with exit code 2", async () => {
  const child = spawnDeno(["prometheus/main.ts"], {
    env: { PROMETHEUS_RETENTION_TIME: "forever", PROMETHEUS_PORT: "x" },
  });
  const status = await child.exited;
  assert.equal(status.code, 2);
  assert.match(child.output(), /error: prometheus: Invalid configuration: PROMETHEUS_PORT must be/);
  assert.match(child.output(), /PROMETHEUS_RETENTION_TIME must be a duration/);
});
