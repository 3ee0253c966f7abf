/**
 * The official MCP conformance suite, every server scenario of the pinned version, against a router
 * with conformance-server behind it (local processes, a real dev Consul).
 */
import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import {
  assertConformance,
  NOT_APPLICABLE,
  runConformance,
  scenarioProblem,
  serverScenarios,
} from "./helpers/conformance_suite.ts";
import { startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { connectV1, type RouterProcess, sessionKeyText, startRouter } from "./router_harness.ts";

/** Waits until the router serves the conformance tools (its catalog has caught up). */
async function waitForFixtures(router: RouterProcess): Promise<void> {
  const { client } = await connectV1(router.url);
  try {
    await eventually("conformance fixtures served", async () => {
      const { tools } = await client.listTools();
      return tools.map((tool: { name: string }) => tool.name);
    }, (names) => names.includes("test_sampling") && names.includes("json_schema_2020_12_tool"));
  } finally {
    await client.close();
  }
}

Deno.test("every server scenario of the conformance suite passes through the router", async (t) => {
  const consul = await startConsulDev();
  const backend = startService("conformance-server", { consulUrl: consul.url, id: "conf-1" });
  let router: RouterProcess | undefined;
  try {
    router = await startRouter(consul.url, "router-conf", { ROUTER_SESSION_KEY: sessionKeyText() });
    await waitForFixtures(router);
    const expected = await serverScenarios();
    assert.equal(expected.length, 32, `the pinned suite lists 32 server scenarios: ${expected}`);
    const results = await runConformance(router.url);
    for (const scenario of expected) {
      await t.step(scenario, () => {
        const result = results.find((r) => r.scenario === scenario);
        assert.ok(result, `scenario "${scenario}" did not run`);
        assert.equal(scenarioProblem(result), undefined);
        if (scenario in NOT_APPLICABLE) {
          // Named in the README; the suite itself says its checks do not apply (INFO only).
          assert.ok(result.checks.every((check) => check.status === "INFO"));
        }
      });
    }
  } finally {
    await router?.stop();
    await backend.stop();
    await consul.stop();
  }
});

Deno.test("assertConformance() names the scenarios a server without fixtures fails", async () => {
  // The same suite against a router with only the echo agent behind it: the helper the Swarm e2e
  // uses must fail loudly, not pass.
  const consul = await startConsulDev();
  const backend = startService("echo-agent", { consulUrl: consul.url, id: "echo-1" });
  let router: RouterProcess | undefined;
  try {
    router = await startRouter(consul.url, "router-echo", { ROUTER_SESSION_KEY: sessionKeyText() });
    await assert.rejects(
      () => assertConformance(router!.url),
      (error: Error) =>
        error.message.includes("tools-call-sampling") && error.message.includes("resources-list"),
    );
  } finally {
    await router?.stop();
    await backend.stop();
    await consul.stop();
  }
});
