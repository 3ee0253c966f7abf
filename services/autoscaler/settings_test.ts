import assert from "node:assert/strict";
import { parseAutoscalerSettings, SettingsError } from "./settings.ts";

const FACTS = { hostname: "c0ffee", addresses: ["10.0.1.9"] };

Deno.test("parseAutoscalerSettings() fills the stack's defaults", () => {
  const settings = parseAutoscalerSettings({}, FACTS);
  assert.deepEqual(settings, {
    prometheusUrl: "http://prometheus:9090",
    consulUrl: "http://consul:8500",
    dockerSocket: "/var/run/docker.sock",
    stack: "",
    intervalSeconds: 15,
    metricWindowSeconds: 30,
    port: 9464,
    advertiseAddr: "10.0.1.9",
    serviceId: "autoscaler-c0ffee",
    statusKey: "platform/autoscaler/status",
    dryRun: false,
    logLevel: "info",
  });
  assert.ok(Object.isFrozen(settings));
});

Deno.test("parseAutoscalerSettings() reads the environment", () => {
  const settings = parseAutoscalerSettings({
    PROMETHEUS_URL: "127.0.0.1:9090/",
    EVALUATION_INTERVAL: "5s",
    METRIC_WINDOW: "20s",
    AUTOSCALE_STACK: "agent-platform",
    DRY_RUN: "TRUE",
    METRICS_PORT: "0",
  }, FACTS);
  assert.equal(settings.prometheusUrl, "http://127.0.0.1:9090");
  assert.equal(settings.intervalSeconds, 5);
  assert.equal(settings.metricWindowSeconds, 20);
  assert.equal(settings.stack, "agent-platform");
  assert.equal(settings.dryRun, true);
  assert.equal(settings.port, 0);
});

Deno.test("parseAutoscalerSettings() lists every problem at once", () => {
  assert.throws(
    () =>
      parseAutoscalerSettings({
        PROMETHEUS_URL: "ftp://x",
        EVALUATION_INTERVAL: "0s",
        METRICS_PORT: "http",
        AUTOSCALE_STACK: "a b",
        DRY_RUN: "maybe",
      }, FACTS),
    (error: unknown) =>
      error instanceof SettingsError && error.exitCode === 2 &&
      /PROMETHEUS_URL must be an http\(s\) URL/.test(error.message) &&
      /EVALUATION_INTERVAL must be a duration from 1s to 600s, got "0s"/.test(error.message) &&
      /METRICS_PORT must be an integer/.test(error.message) &&
      /AUTOSCALE_STACK must be a stack name/.test(error.message) &&
      /DRY_RUN must be "true" or "false"/.test(error.message),
  );
});
