/** Real Consul, real echo-agent processes: each serves Prometheus metrics on its registered port. */
import assert from "node:assert/strict";
import { connect, grpcFailure } from "./helpers/capability_client.ts";
import { freePort, startConsulDev } from "./helpers/consul_dev.ts";
import { healthEntries, passingIds, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";

/** The value of the series named exactly `series`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(address: string): Promise<string> {
  const response = await fetch(`http://${address}/metrics`);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return text;
}

Deno.test("echo-agent serves its metrics on the port it registers in Consul", async (t) => {
  const consul = await startConsulDev();
  const echo = startService("echo-agent", {
    consulUrl: consul.url,
    id: "echo-agent-m1",
    // Long enough to see the drain state from outside.
    env: { METRICS_PORT: String(freePort()), DRAIN_SECONDS: "3" },
  });
  const client = connect(echo.address);
  try {
    let metricsAddress = "";
    await t.step("Meta metrics_port names the endpoint", async () => {
      await eventually(
        "passing",
        () => passingIds(consul.url, "agent-echo"),
        (ids) => ids.length === 1,
      );
      const [entry] = await healthEntries(consul.url, "agent-echo");
      assert.match(entry.Service.Meta.metrics_port, /^\d+$/);
      assert.notEqual(Number(entry.Service.Meta.metrics_port), echo.port);
      metricsAddress = `${entry.Service.Address}:${entry.Service.Meta.metrics_port}`;
      const text = await scrape(metricsAddress);
      assert.equal(
        sample(text, 'platform_service_calls_total{rpc="Invoke",tool="echo",outcome="OK"}'),
        0,
      );
      assert.equal(sample(text, "platform_service_draining"), 0);
    });

    await t.step("calls are counted by tool and outcome, with their latency", async () => {
      for (let i = 0; i < 3; i++) await client.invoke("echo", { message: `m${i}` });
      assert.equal(
        (await grpcFailure(client.invoke("echo", { nope: 1 }))).code,
        "INVALID_ARGUMENT",
      );
      assert.equal((await grpcFailure(client.invoke("missing", {}))).code, "NOT_FOUND");
      await client.invokeStream("echo", { message: "s" });
      const text = await scrape(metricsAddress);
      const calls = (labels: string) => sample(text, `platform_service_calls_total{${labels}}`);
      assert.equal(calls('rpc="Invoke",tool="echo",outcome="OK"'), 3);
      assert.equal(calls('rpc="Invoke",tool="echo",outcome="INVALID_ARGUMENT"'), 1);
      assert.equal(calls('rpc="Invoke",tool="_unknown",outcome="NOT_FOUND"'), 1);
      assert.equal(calls('rpc="InvokeStream",tool="echo",outcome="OK"'), 1);
      assert.equal(sample(text, 'platform_service_call_duration_seconds_count{tool="echo"}'), 5);
    });

    await t.step("a slow call shows in flight until it ends", async () => {
      const slow = client.invoke("echo", { message: "slow", delay_ms: 1500 });
      await eventually(
        "one call in flight",
        async () => sample(await scrape(metricsAddress), "platform_service_calls_in_flight"),
        (value) => value === 1,
      );
      await slow;
      const text = await scrape(metricsAddress);
      assert.equal(sample(text, "platform_service_calls_in_flight"), 0);
    });

    await t.step("after SIGTERM the instance reports draining until it exits", async () => {
      echo.kill("SIGTERM");
      await eventually(
        "draining",
        async () => sample(await scrape(metricsAddress), "platform_service_draining"),
        (value) => value === 1,
        { timeoutMs: 5_000, intervalMs: 100 },
      );
      assert.equal((await echo.exited).code, 0);
    });
  } finally {
    client.close();
    await echo.stop();
    await consul.stop();
  }
});

Deno.test("the metrics endpoint refuses other paths and methods", async () => {
  const consul = await startConsulDev();
  const metricsPort = freePort();
  const echo = startService("echo-agent", {
    consulUrl: consul.url,
    id: "echo-agent-m2",
    env: { METRICS_PORT: String(metricsPort) },
  });
  try {
    await eventually(
      "passing",
      () => passingIds(consul.url, "agent-echo"),
      (ids) => ids.length === 1,
    );
    const base = `http://127.0.0.1:${metricsPort}`;
    const notFound = await fetch(`${base}/other`);
    assert.equal(notFound.status, 404);
    await notFound.body?.cancel();
    const post = await fetch(`${base}/metrics`, { method: "POST", body: "x" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await echo.stop();
    await consul.stop();
  }
});

Deno.test("a taken metrics port stops the service with exit code 1", async () => {
  const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const taken = (listener.addr as Deno.NetAddr).port;
  const echo = startService("echo-agent", {
    consulUrl: "http://127.0.0.1:1",
    id: "echo-agent-m3",
    env: { METRICS_PORT: String(taken) },
  });
  try {
    const status = await echo.exited;
    assert.equal(status.code, 1);
    assert.match(echo.output(), /"msg":"cannot start"/);
  } finally {
    listener.close();
  }
});
