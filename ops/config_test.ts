import assert from "node:assert/strict";
import { parseConfig } from "./config.ts";
import { UsageError } from "./errors.ts";

const FACTS = { root: "/repo", denoPath: "/bin/deno" };

Deno.test("parseConfig() uses defaults with an empty environment", () => {
  const config = parseConfig({}, {}, FACTS);
  assert.equal(config.stack, "agent-platform");
  assert.equal(config.consulPort, 8500);
  assert.equal(config.consulUrl, "http://127.0.0.1:8500");
  assert.equal(config.timeoutSeconds, 300);
  assert.equal(config.mcpPort, 8080);
  assert.equal(config.statsPort, 8404);
  assert.equal(config.prometheusPort, 9090);
  assert.equal(config.prometheusUrl, "http://127.0.0.1:9090");
  assert.equal(config.statsAuthFile, undefined);
  assert.equal(config.json, false);
  assert.equal(config.buildDir, "/repo/.build");
  assert.ok(Object.isFrozen(config));
});

Deno.test("parseConfig() prefers flags to the environment", () => {
  const env = { PLATFORM_STACK: "from-env", PLATFORM_CONSUL_PORT: "18500", PLATFORM_TIMEOUT: "10" };
  const config = parseConfig(
    {
      ...env,
      PLATFORM_MCP_PORT: "18080",
      PLATFORM_STATS_PORT: "18404",
      PLATFORM_PROMETHEUS_PORT: "19090",
    },
    { stack: "from-flag", timeout: "20", statsPort: "28404", prometheusPort: "29090" },
    FACTS,
  );
  assert.equal(config.prometheusPort, 29090);
  assert.equal(config.prometheusUrl, "http://127.0.0.1:29090");
  assert.equal(config.mcpPort, 18080);
  assert.equal(config.statsPort, 28404);
  assert.equal(config.stack, "from-flag");
  assert.equal(config.consulPort, 18500);
  assert.equal(config.consulUrl, "http://127.0.0.1:18500");
  assert.equal(config.timeoutSeconds, 20);
});

Deno.test("parseConfig() lists every problem in one usage error", () => {
  assert.throws(
    () => parseConfig({ PLATFORM_CONSUL_PORT: "x" }, { stack: "Bad Name", timeout: "-1" }, FACTS),
    (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /stack name/);
      assert.match(error.message, /Consul port/);
      assert.match(error.message, /timeout/);
      return true;
    },
  );
});

Deno.test("parseConfig() refuses one host port for two uses", () => {
  assert.throws(
    () => parseConfig({ PLATFORM_MCP_PORT: "8404" }, {}, FACTS),
    /ports must differ, got 8500, 8404, 8404, 9090/,
  );
});

Deno.test("parseConfig() takes the front door limits from PLATFORM_LB_*, 0 lifting one", () => {
  assert.deepEqual(parseConfig({}, {}, FACTS).lbLimits, {});
  const config = parseConfig(
    {
      PLATFORM_LB_CLIENT_MAX_CONN: "0",
      PLATFORM_LB_CLIENT_MAX_RATE: "0",
      PLATFORM_LB_CLIENT_MAX_CONCURRENT: " 0 ",
      PLATFORM_LB_SOURCE_MAX_RATE: "5000",
      PLATFORM_LB_CLIENT_RATE_BURST: "50",
    },
    {},
    FACTS,
  );
  assert.deepEqual(config.lbLimits, {
    LB_CLIENT_MAX_CONN: "0",
    LB_CLIENT_MAX_RATE: "0",
    LB_CLIENT_RATE_BURST: "50",
    LB_CLIENT_MAX_CONCURRENT: "0",
    LB_SOURCE_MAX_RATE: "5000",
  });
  assert.throws(
    () =>
      parseConfig(
        { PLATFORM_LB_CLIENT_RATE_BURST: "0", PLATFORM_LB_SOURCE_MAX_RATE: "x" },
        {},
        FACTS,
      ),
    /PLATFORM_LB_CLIENT_RATE_BURST.*PLATFORM_LB_SOURCE_MAX_RATE|PLATFORM_LB_SOURCE_MAX_RATE.*PLATFORM_LB_CLIENT_RATE_BURST/,
  );
});
