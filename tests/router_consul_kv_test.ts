import { ConsulClient } from "../services/runtime/consul/client.ts";
import assert from "node:assert/strict";
import { STRATEGY_KV_PREFIX, StrategySettings } from "../services/mcp-router/strategy_settings.ts";
import type { StrategyName } from "../services/runtime/strategies.ts";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { type ServiceProcess, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { connectV2, type RouterProcess, startRouter } from "./router_harness.ts";

async function kv(consulUrl: string, method: "PUT" | "DELETE", key: string, value?: string) {
  const response = await fetch(`${consulUrl}/v1/kv/${key}`, { method, body: value });
  assert.equal(response.status, 200, await response.text());
}

async function metricsOf(router: RouterProcess): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${router.opsPort}/metrics`);
  return await response.text();
}

function strategyLine(service: string, strategy: StrategyName): string {
  return `mcp_router_backend_strategy{service="${service}",strategy="${strategy}"} 1`;
}

Deno.test("StrategySettings follows Consul KV, and LB_STRATEGY_<SERVICE> wins over it", async () => {
  const consul = await startConsulDev();
  const settings = new StrategySettings({
    consul: new ConsulClient(consul.url),
    fromEnv: new Map([["TOOL_WEATHER", "random"]]),
    waitSeconds: 5,
  });
  const changes: string[] = [];
  settings.onChange((service, strategy) => changes.push(`${service}=${strategy}`));
  try {
    await settings.ready(10_000);
    assert.equal(settings.strategyFor("agent-echo"), "round-robin");
    await kv(consul.url, "PUT", `${STRATEGY_KV_PREFIX}agent-echo`, "least-outstanding");
    await kv(consul.url, "PUT", `${STRATEGY_KV_PREFIX}tool-weather`, "weighted");
    await eventually(
      "agent-echo least-outstanding",
      () => Promise.resolve(settings.strategyFor("agent-echo")),
      (strategy) => strategy === "least-outstanding",
    );
    assert.equal(settings.strategyFor("tool-weather"), "random");
    await kv(consul.url, "DELETE", `${STRATEGY_KV_PREFIX}agent-echo`);
    await eventually(
      "agent-echo back to round-robin",
      () => Promise.resolve(settings.strategyFor("agent-echo")),
      (strategy) => strategy === "round-robin",
    );
    assert.deepEqual(changes, ["agent-echo=least-outstanding", "agent-echo=round-robin"]);
  } finally {
    await settings.close();
    await consul.stop();
  }
});

Deno.test("mcp-router takes a backend's strategy from Consul KV unless the environment sets it", async () => {
  const consul = await startConsulDev();
  const echoes: ServiceProcess[] = ["echo-1", "echo-2", "echo-3"].map((id) =>
    startService("echo-agent", { consulUrl: consul.url, id })
  );
  const routers: RouterProcess[] = [];
  try {
    const fromKv = await startRouter(consul.url, "router-kv");
    routers.push(fromKv);
    const fromEnv = await startRouter(consul.url, "router-env", {
      LB_STRATEGY_AGENT_ECHO: "round-robin",
    });
    routers.push(fromEnv);
    const client = await connectV2(fromKv.url);
    try {
      await eventually("three echo instances", async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 9; i++) {
          const result = await client.callTool({ name: "echo", arguments: { message: "x" } });
          seen.add((result.structuredContent as { instance_id: string }).instance_id);
        }
        return seen.size;
      }, (size) => size === 3);
      assert.match(await metricsOf(fromKv), new RegExp(strategyLine("agent-echo", "round-robin")));

      await kv(consul.url, "PUT", `${STRATEGY_KV_PREFIX}agent-echo`, "least-outstanding");
      await eventually(
        "router-kv on least-outstanding",
        () => metricsOf(fromKv),
        (text) => text.includes(strategyLine("agent-echo", "least-outstanding")),
      );
      // The setting is live: a busy instance gets none of the quick calls.
      const slow = client.callTool({ name: "echo", arguments: { message: "s", delay_ms: 3000 } });
      await eventually(
        "the slow call in flight",
        () => metricsOf(fromKv),
        (text) => text.includes('mcp_router_backend_in_flight{service="agent-echo"} 1'),
      );
      const fast: string[] = [];
      for (let i = 0; i < 20; i++) {
        const result = await client.callTool({ name: "echo", arguments: { message: "f" } });
        fast.push((result.structuredContent as { instance_id: string }).instance_id);
      }
      const busy = ((await slow).structuredContent as { instance_id: string }).instance_id;
      assert.equal(fast.filter((id) => id === busy).length, 0);

      const envMetrics = await metricsOf(fromEnv);
      assert.match(envMetrics, new RegExp(strategyLine("agent-echo", "round-robin")));
      assert.match(fromEnv.output(), /the environment wins/);
    } finally {
      await client.close();
    }
  } finally {
    for (const router of routers) await router.stop();
    for (const echo of echoes) await echo.stop();
    await consul.stop();
  }
});
