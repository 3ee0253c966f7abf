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
