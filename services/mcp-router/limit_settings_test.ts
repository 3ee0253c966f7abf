import assert from "node:assert/strict";
import { LIMIT_DEFAULTS, parseLimitSettings } from "./limit_settings.ts";

Deno.test("parseLimitSettings() has the issue's defaults", () => {
  const problems: string[] = [];
  const settings = parseLimitSettings({}, problems);
  assert.deepEqual(problems, []);
  assert.equal(settings.clientRate, 200);
  assert.equal(settings.clientBurst, 200);
  assert.equal(settings.clientConcurrency, 64);
  assert.equal(settings.bodyTimeoutMs, 30_000);
  assert.deepEqual({ ...settings, trustedProxies: undefined }, {
    ...LIMIT_DEFAULTS,
    trustedProxies: undefined,
  });
});

Deno.test("parseLimitSettings() lifts the per-client and in-flight limits at 0", () => {
  const problems: string[] = [];
  const settings = parseLimitSettings({
    ROUTER_CLIENT_MAX_RATE: "0",
    ROUTER_CLIENT_BURST: "0",
    ROUTER_CLIENT_MAX_CONCURRENT: "0",
    ROUTER_MAX_IN_FLIGHT: "0",
  }, problems);
  assert.deepEqual(problems, []);
  for (const value of [settings.clientRate, settings.clientBurst, settings.clientConcurrency]) {
    assert.equal(value, Number.MAX_SAFE_INTEGER);
  }
  assert.equal(settings.maxInFlight, Number.MAX_SAFE_INTEGER);
  parseLimitSettings({ ROUTER_MAX_STREAMS: "0" }, problems);
  assert.deepEqual(problems, ['Invalid ROUTER_MAX_STREAMS "0": expected a positive integer']);
});

Deno.test("parseLimitSettings() reads every setting and lists every bad one", () => {
  const problems: string[] = [];
  const settings = parseLimitSettings({
    ROUTER_CLIENT_MAX_RATE: "2.5",
    ROUTER_CLIENT_BURST: "5",
    ROUTER_MAX_BATCH: "4",
    ROUTER_STREAM_IDLE: "2m",
    ROUTER_HEADER_TIMEOUT: "500ms",
    ROUTER_TRUSTED_PROXIES: "10.0.0.0/8",
  }, problems);
  assert.deepEqual(problems, []);
  assert.equal(settings.clientRate, 2.5);
  assert.equal(settings.clientBurst, 5);
  assert.equal(settings.maxBatch, 4);
  assert.equal(settings.streamIdleMs, 120_000);
  assert.equal(settings.headerTimeoutMs, 500);
  assert.equal(settings.trustedProxies.addresses.length, 1);

  const bad: string[] = [];
  parseLimitSettings({
    ROUTER_CLIENT_MAX_RATE: "fast",
    ROUTER_CLIENT_MAX_CONCURRENT: "-1",
    ROUTER_MAX_STREAMS: "-3",
    ROUTER_CLIENT_BURST: "8",
    ROUTER_BODY_TIMEOUT: "soon",
    ROUTER_TRUSTED_PROXIES: "10.0.0.0/40",
  }, bad);
  assert.equal(bad.length, 6, bad.join("\n"));
  assert.match(bad[0], /^Invalid ROUTER_TRUSTED_PROXIES: "10\.0\.0\.0\/40"/);
  assert.ok(
    bad.some((p) =>
      p ===
        'Invalid ROUTER_CLIENT_MAX_RATE "fast": expected a number of calls per second (0 lifts the limit)'
    ),
  );
  assert.ok(bad.some((p) => p.startsWith('Invalid ROUTER_BODY_TIMEOUT "soon"')));
  assert.ok(
    bad.some((p) => p.startsWith("ROUTER_MAX_BATCH (32) must not exceed ROUTER_CLIENT_BURST (8)")),
  );
});
