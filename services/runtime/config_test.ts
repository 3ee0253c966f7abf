import assert from "node:assert/strict";
import { ConfigError, parseDurationSeconds, parseServiceConfig, pickAddresses } from "./config.ts";

const DEFAULTS = { program: "echo-agent", defaultPort: 50052, hostname: "3f2a9c1b" };

Deno.test("parseServiceConfig() fills every default", () => {
  const config = parseServiceConfig({}, { ...DEFAULTS, addresses: ["10.0.1.5"] });
  assert.deepEqual(config, {
    consulUrl: "http://consul:8500",
    consul: { address: "http://consul:8500", token: undefined, tokenFile: undefined },
    port: 50052,
    advertiseAddr: "10.0.1.5",
    serviceId: "echo-agent-3f2a9c1b",
    checkIntervalSeconds: 2,
    checkFailures: 3,
    drainSeconds: 2,
    graceSeconds: 10,
    logLevel: "info",
    expose: null,
    metricsPort: 51052,
    grpcMaxConcurrentStreams: 256,
    grpcMaxDeadlineMs: 300_000,
  });
  assert.ok(Object.isFrozen(config));
});

Deno.test("parseServiceConfig() reads the environment", () => {
  const config = parseServiceConfig({
    CONSUL_HTTP_ADDR: "127.0.0.1:8500/",
    PORT: "0",
    ADVERTISE_ADDR: "127.0.0.1",
    SWARM_SERVICE_NAME: "agent-platform_echo-agent",
    CHECK_INTERVAL: "500ms",
    CHECK_FAILURES: "1",
    DRAIN_SECONDS: "0",
    GRACE_SECONDS: "1m",
    LOG_LEVEL: "DEBUG",
  }, DEFAULTS);
  assert.equal(config.consulUrl, "http://127.0.0.1:8500");
  assert.equal(config.port, 0);
  assert.equal(config.serviceId, "agent-platform_echo-agent-3f2a9c1b");
  assert.equal(config.checkIntervalSeconds, 0.5);
  assert.equal(config.checkFailures, 1);
  assert.equal(config.drainSeconds, 0);
  assert.equal(config.graceSeconds, 60);
  assert.equal(config.logLevel, "debug");
});

Deno.test("parseServiceConfig() reads the HAProxy exposure", async (t) => {
  await t.step("LB_PORT alone exposes over gRPC", () => {
    const config = parseServiceConfig({ LB_PORT: "9101" }, DEFAULTS);
    assert.deepEqual(config.expose, { port: 9101, mode: "grpc" });
  });
  await t.step("LB_MODE=tcp passes connections through", () => {
    const config = parseServiceConfig({ LB_PORT: "9102", LB_MODE: "TCP" }, DEFAULTS);
    assert.deepEqual(config.expose, { port: 9102, mode: "tcp" });
  });
  await t.step("bad values are listed together", () => {
    assert.throws(
      () => parseServiceConfig({ LB_PORT: "0", LB_MODE: "udp" }, DEFAULTS),
      (error: unknown) =>
        error instanceof ConfigError && error.problems.length === 2 &&
        /LB_PORT must be an integer from 1 to 65535, got "0"/.test(error.message) &&
        /LB_MODE must be "grpc" or "tcp", got "udp"/.test(error.message),
    );
  });
});

Deno.test("parseServiceConfig() reads the metrics port", async (t) => {
  const cases: [string, Record<string, string>, number | RegExp][] = [
    ["PORT + 1000 by default", { PORT: "50060" }, 51060],
    ["any free port when PORT is 0", { PORT: "0" }, 0],
    ["any free port when PORT + 1000 is no port", { PORT: "65000" }, 0],
    ["METRICS_PORT wins", { PORT: "50060", METRICS_PORT: "9464" }, 9464],
    ["not a number", { METRICS_PORT: "metrics" }, /METRICS_PORT must be an integer/],
    ["the gRPC port", { PORT: "50060", METRICS_PORT: "50060" }, /must differ from PORT/],
  ];
  for (const [name, env, expected] of cases) {
    await t.step(name, () => {
      if (typeof expected === "number") {
        assert.equal(parseServiceConfig(env, DEFAULTS).metricsPort, expected);
      } else {
        assert.throws(() => parseServiceConfig(env, DEFAULTS), expected);
      }
    });
  }
});

Deno.test("parseServiceConfig() lists every problem at once", () => {
  try {
    parseServiceConfig({
      PORT: "70000",
      CHECK_INTERVAL: "soon",
      CHECK_FAILURES: "0",
      LOG_LEVEL: "loud",
    }, DEFAULTS);
    assert.fail("expected a ConfigError");
  } catch (caught) {
    assert.ok(caught instanceof ConfigError);
    assert.equal(caught.exitCode, 2);
    assert.equal(caught.problems.length, 4);
    assert.match(caught.message, /CHECK_FAILURES must be an integer from 1 to 10, got "0"/);
    assert.match(caught.message, /PORT must be an integer from 0 to 65535, got "70000"/);
    assert.match(caught.message, /CHECK_INTERVAL must be a duration/);
    assert.match(caught.message, /LOG_LEVEL must be one of debug, info, warn, error, got "loud"/);
  }
});

Deno.test("parseDurationSeconds() reads units", async (t) => {
  const cases: [string, number | undefined][] = [
    ["2s", 2],
    ["2", 2],
    ["250ms", 0.25],
    ["1.5m", 90],
    ["-1s", undefined],
    ["2h", undefined],
    ["", undefined],
  ];
  for (const [text, expected] of cases) {
    await t.step(`"${text}"`, () => assert.equal(parseDurationSeconds(text), expected));
  }
});

Deno.test("pickAddresses() keeps non-loopback IPv4 in order", () => {
  assert.deepEqual(
    pickAddresses([
      { family: "IPv4", address: "127.0.0.1", name: "lo" },
      { family: "IPv6", address: "fe80::1", name: "eth0" },
      { family: "IPv4", address: "10.0.1.5", name: "eth0" },
      { family: "IPv4", address: "172.18.0.3", name: "eth1" },
    ]),
    ["10.0.1.5", "172.18.0.3"],
  );
});

Deno.test("parseServiceConfig() reads the gRPC stream limit and maximum deadline", async (t) => {
  await t.step("given", () => {
    const config = parseServiceConfig(
      { GRPC_MAX_CONCURRENT_STREAMS: "100", GRPC_MAX_DEADLINE: "2m" },
      DEFAULTS,
    );
    assert.equal(config.grpcMaxConcurrentStreams, 100);
    assert.equal(config.grpcMaxDeadlineMs, 120_000);
  });
  for (
    const [env, message] of [
      [
        { GRPC_MAX_CONCURRENT_STREAMS: "0" },
        /GRPC_MAX_CONCURRENT_STREAMS must be an integer from 1 to 100000, got "0"/,
      ],
      [{ GRPC_MAX_CONCURRENT_STREAMS: "1e3" }, /GRPC_MAX_CONCURRENT_STREAMS .* got "1e3"/],
      [
        { GRPC_MAX_DEADLINE: "forever" },
        /GRPC_MAX_DEADLINE must be a duration from 0\.001s to 86400s/,
      ],
      [{ GRPC_MAX_DEADLINE: "0" }, /GRPC_MAX_DEADLINE must be a duration/],
    ] as const
  ) {
    await t.step(JSON.stringify(env), () => {
      assert.throws(
        () => parseServiceConfig(env, DEFAULTS),
        (error: Error) => error instanceof ConfigError && message.test(error.message),
      );
    });
  }
});
