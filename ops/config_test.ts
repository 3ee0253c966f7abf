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
  assert.equal(config.json, false);
  assert.equal(config.buildDir, "/repo/.build");
  assert.ok(Object.isFrozen(config));
});

Deno.test("parseConfig() prefers flags to the environment", () => {
  const env = { PLATFORM_STACK: "from-env", PLATFORM_CONSUL_PORT: "18500", PLATFORM_TIMEOUT: "10" };
  const config = parseConfig(env, { stack: "from-flag", timeout: "20" }, FACTS);
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
