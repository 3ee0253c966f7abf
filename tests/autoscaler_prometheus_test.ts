/** The autoscaler's Prometheus client against a real Prometheus scraping real echo instances. */
import assert from "node:assert/strict";
import {
  metricQuery,
  PrometheusError,
  queryScalar,
  readMetric,
} from "../services/autoscaler/prometheus_client.ts";
import { connect } from "./helpers/capability_client.ts";
import { freePort, startConsulDev } from "./helpers/consul_dev.ts";
import { activeTargets, startPrometheus } from "./helpers/prometheus_dev.ts";
import { startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { delay } from "../services/runtime/delay.ts";

Deno.test("readMetric() reads calls per second and in flight from a real Prometheus", async (t) => {
  const consul = await startConsulDev();
  const echoes = ["echo-agent-q1", "echo-agent-q2"].map((id) =>
    startService("echo-agent", { consulUrl: consul.url, id })
  );
  const prometheus = await startPrometheus({
    CONSUL_HTTP_ADDR: consul.url,
    LB_TARGETS: `127.0.0.1:${freePort()}`,
    PROMETHEUS_SCRAPE_INTERVAL: "1s",
  });
  const rps = { metric: "rps", program: "echo-agent" } as const;
  const inflight = { metric: "inflight", program: "echo-agent" } as const;
  try {
    await eventually(
      "both echoes scraped",
      () => activeTargets(prometheus.url),
      (targets) =>
        targets.filter((target) => target.scrapePool === "services" && target.health === "up")
          .length === 2,
      { timeoutMs: 30_000, intervalMs: 100 },
    );

    await t.step("idle services read 0, not missing", async () => {
      const reading = await eventually(
        "a rate",
        () => readMetric(prometheus.url, rps, { windowSeconds: 5 }),
        (value) => value.kind === "value",
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      assert.deepEqual(reading, { kind: "value", total: 0 });
    });

    await t.step("calls spread over two instances add up", async () => {
      const clients = echoes.map((echo) => connect(echo.address));
      // 20 calls per second in all for about 4 s, bounded in count.
      for (let i = 0; i < 80; i++) {
        await clients[i % 2].invoke("echo", { message: `q${i}` });
        await delay(50);
      }
      clients.forEach((client) => client.close());
      const reading = await readMetric(prometheus.url, rps, { windowSeconds: 3 });
      assert.equal(reading.kind, "value");
      if (reading.kind !== "value") return;
      // Over the last 3 s the rate was near 20/s (the loop is slower than its sleeps).
      assert.ok(reading.total > 5 && reading.total < 25, `rate ${reading.total}`);
    });

    await t.step("slow calls read as in flight", async () => {
      const client = connect(echoes[0].address);
      const slow = Array.from(
        { length: 3 },
        (_, i) => client.invoke("echo", { message: `slow${i}`, delay_ms: 4000 }),
      );
      const reading = await eventually(
        "3 in flight",
        () => readMetric(prometheus.url, inflight, { windowSeconds: 1 }),
        (value) => value.kind === "value" && value.total >= 2.9,
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      assert.equal(reading.kind, "value");
      await Promise.all(slow);
      client.close();
    });

    await t.step("an unknown program reads as missing, saying why", async () => {
      const reading = await readMetric(prometheus.url, { metric: "rps", program: "nobody" }, {
        windowSeconds: 5,
      });
      assert.equal(reading.kind, "missing");
      if (reading.kind === "missing") assert.match(reading.reason, /no series for sum\(rate/);
    });

    await t.step("a query Prometheus refuses is an error with its reason", async () => {
      await assert.rejects(
        queryScalar(prometheus.url, "sum(rate(x[5s]"),
        (error: unknown) =>
          error instanceof PrometheusError && error.code === "REFUSED" &&
          /parse error/.test(error.message),
      );
      await assert.rejects(
        queryScalar(prometheus.url, "up"),
        (error: unknown) => error instanceof PrometheusError && error.code === "BAD_ANSWER",
      );
    });
  } finally {
    await prometheus.stop();
    await Promise.all(echoes.map((echo) => echo.stop()));
    await consul.stop();
  }

  await t.step("a stopped Prometheus reads as missing: unreachable", async () => {
    const reading = await readMetric(prometheus.url, rps, { windowSeconds: 5, timeoutMs: 2000 });
    assert.equal(reading.kind, "missing");
    if (reading.kind === "missing") assert.match(reading.reason, /Cannot reach Prometheus at/);
  });
});

Deno.test("metricQuery() sums over every instance of the program", () => {
  assert.equal(
    metricQuery({ metric: "rps", program: "echo-agent" }, 30),
    'sum(rate(platform_service_calls_total{program="echo-agent"}[30s]))',
  );
  assert.equal(
    metricQuery({ metric: "inflight", program: "echo-agent" }, 20),
    'sum(avg_over_time(platform_service_calls_in_flight{program="echo-agent"}[20s]))',
  );
});
