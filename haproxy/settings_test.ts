import assert from "node:assert/strict";
import { parseLbConfig } from "./settings.ts";

const options = { defaultTemplate: "/repo/templates/haproxy.cfg.hbs" };

Deno.test("parseLbConfig() applies defaults", () => {
  const config = parseLbConfig({}, {}, options);
  assert.equal(config.consulUrl, "http://127.0.0.1:8500");
  assert.equal(config.settings.mcpPort, 8080);
  assert.equal(config.settings.statsPort, 8404);
  assert.equal(config.settings.balance, "roundrobin");
  assert.equal(config.settings.runtimeSocket, "/run/lb/admin.sock");
  assert.equal(config.templatePath, options.defaultTemplate);
  assert.ok(Object.isFrozen(config));
});

Deno.test("parseLbConfig() puts flags over environment", () => {
  const config = parseLbConfig(
    { CONSUL_HTTP_ADDR: "consul:8500", LB_MCP_PORT: "18080", LB_TEMPLATE: "/env.hbs" },
    { template: "/flag.hbs" },
    { ...options, statsAuthText: "admin:pa:ss\n" },
  );
  assert.equal(config.consulUrl, "http://consul:8500");
  assert.equal(config.settings.mcpPort, 18080);
  assert.equal(config.templatePath, "/flag.hbs");
  assert.deepEqual(config.settings.statsAuth, { user: "admin", password: "pa:ss" });
});

Deno.test("parseLbConfig() lists every problem", () => {
  assert.throws(
    () =>
      parseLbConfig(
        { LB_MCP_PORT: "x", LB_BALANCE: "fastest", LB_STATS_PORT: "99999" },
        {},
        { ...options, statsAuthText: "nocolon" },
      ),
    (error: Error) =>
      /LB_MCP_PORT/.test(error.message) && /LB_BALANCE/.test(error.message) &&
      /LB_STATS_PORT/.test(error.message) && /LB_STATS_AUTH_FILE/.test(error.message),
  );
});

Deno.test("parseLbConfig() takes session affinity by the MCP session header", () => {
  const config = parseLbConfig({ LB_BALANCE: "hdr(mcp-session-id)" }, {}, options);
  assert.equal(config.settings.balance, "hdr(mcp-session-id)");
});

Deno.test("parseLbConfig() gives the front door's limits their defaults", () => {
  const { settings } = parseLbConfig({}, {}, options);
  assert.equal(settings.clientMaxRequestRate, 200);
  assert.equal(settings.clientRateBurst, 200);
  assert.equal(settings.clientMaxConcurrent, 64);
  assert.equal(settings.clientMaxConnections, 256);
  assert.equal(settings.sourceMaxRequestRate, 2000);
  assert.equal(settings.maxConnections, 4096);
  assert.equal(settings.serverMaxConnections, 512);
  assert.equal(settings.queueTimeoutMs, 2_000);
  assert.equal(settings.headerTimeoutMs, 10_000);
  assert.equal(settings.bodyTimeoutMs, 30_000);
  assert.equal(settings.clientTimeoutMs, 60_000);
  assert.equal(settings.keepAliveTimeoutMs, 60_000);
  assert.equal(settings.clientKeepAliveIdleMs, 60_000);
});

Deno.test("parseLbConfig() reads limits and durations in HAProxy's notation", () => {
  const { settings } = parseLbConfig(
    {
      LB_CLIENT_MAX_RATE: "50",
      LB_CLIENT_RATE_BURST: "100",
      LB_CLIENT_MAX_CONCURRENT: "0",
      LB_BODY_TIMEOUT: "1m",
      LB_HEADER_TIMEOUT: "500ms",
      LB_QUEUE_TIMEOUT: "1500",
    },
    {},
    options,
  );
  assert.equal(settings.clientMaxRequestRate, 50);
  assert.equal(settings.clientRateBurst, 100);
  assert.equal(settings.clientMaxConcurrent, 0);
  assert.equal(settings.bodyTimeoutMs, 60_000);
  assert.equal(settings.headerTimeoutMs, 500);
  assert.equal(settings.queueTimeoutMs, 1_500);
});

Deno.test("parseLbConfig() refuses bad limits with exit code 2, naming each", async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { LB_CLIENT_MAX_RATE: "-1" },
      /LB_CLIENT_MAX_RATE must be an integer from 0 to 1000000, got "-1"/,
    ],
    [{ LB_CLIENT_RATE_BURST: "0" }, /LB_CLIENT_RATE_BURST must be an integer from 1/],
    [{ LB_CLIENT_MAX_CONCURRENT: "many" }, /LB_CLIENT_MAX_CONCURRENT .* got "many"/],
    [{ LB_MAX_CONN: "0" }, /LB_MAX_CONN must be an integer from 1/],
    [
      { LB_BODY_TIMEOUT: "30 s" },
      /LB_BODY_TIMEOUT must be a duration from 1ms to 1h like "30s" or "500ms", got "30 s"/,
    ],
    [{ LB_HEADER_TIMEOUT: "0" }, /LB_HEADER_TIMEOUT must be a duration/],
    [{ LB_QUEUE_TIMEOUT: "2d" }, /LB_QUEUE_TIMEOUT/],
    [{ LB_CLIENT_TCP_KEEPALIVE: "500ms" }, /LB_CLIENT_TCP_KEEPALIVE must be a duration from 1s/],
  ];
  for (const [env, message] of cases) {
    await t.step(Object.keys(env).join(","), () => {
      assert.throws(
        () => parseLbConfig(env, {}, options),
        (error: Error & { exitCode?: number }) =>
          message.test(error.message) && error.exitCode === 2,
      );
    });
  }
});
