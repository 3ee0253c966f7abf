import assert from "node:assert/strict";
import { parsePrometheusSettings, SettingsError } from "./settings.ts";

Deno.test("parsePrometheusSettings() fills the stack's defaults", () => {
  const settings = parsePrometheusSettings({});
  assert.deepEqual(settings, {
    consulUrl: "http://consul:8500",
    port: 9090,
    bindAddress: "0.0.0.0",
    sdPort: 9091,
    dataDir: "/prometheus",
    runDir: "/run/prometheus",
    retentionTime: "6h",
    retentionSize: "512MB",
    scrapeIntervalSeconds: 5,
    lb: { dnsNames: ["tasks.lb"], port: 8404 },
    lbAuth: null,
    binary: "prometheus",
    logLevel: "info",
  });
  assert.ok(Object.isFrozen(settings));
});

Deno.test("parsePrometheusSettings() reads fixed HAProxy targets and the stats credentials", () => {
  const settings = parsePrometheusSettings(
    { LB_TARGETS: "127.0.0.1:8404, 127.0.0.1:9404", CONSUL_HTTP_ADDR: "127.0.0.1:8500" },
    "ops:pa:ss\n",
  );
  assert.deepEqual(settings.lb, { targets: ["127.0.0.1:8404", "127.0.0.1:9404"] });
  assert.deepEqual(settings.lbAuth, { username: "ops", password: "pa:ss" });
  assert.equal(settings.consulUrl, "http://127.0.0.1:8500");
});

Deno.test("parsePrometheusSettings() lists every problem at once", () => {
  assert.throws(
    () =>
      parsePrometheusSettings({
        PROMETHEUS_PORT: "9091",
        PROMETHEUS_RETENTION_TIME: "forever",
        PROMETHEUS_RETENTION_SIZE: "big",
        PROMETHEUS_SCRAPE_INTERVAL: "500ms",
      }, "no-colon"),
    (error: unknown) =>
      error instanceof SettingsError && error.exitCode === 2 &&
      /PROMETHEUS_PORT and PROMETHEUS_SD_PORT must differ/.test(error.message) &&
      /PROMETHEUS_RETENTION_TIME must be a duration/.test(error.message) &&
      /PROMETHEUS_RETENTION_SIZE must be a size/.test(error.message) &&
      /PROMETHEUS_SCRAPE_INTERVAL must be whole seconds/.test(error.message) &&
      /LB_STATS_AUTH_FILE must hold one line/.test(error.message),
  );
});
