import { ConsulClient } from "../services/runtime/consul/client.ts";
import assert from "node:assert/strict";
import {
  ConsulEndedSessions,
  ENDED_SESSIONS_KV_PREFIX,
} from "../services/mcp-router/consul_ended_sessions.ts";
import { STRATEGY_KV_PREFIX, StrategySettings } from "../services/mcp-router/strategy_settings.ts";
import type { StrategyName } from "../services/runtime/strategies.ts";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { type ServiceProcess, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import {
  connectV1,
  connectV2,
  type RouterProcess,
  sessionKeyText,
  startRouter,
} from "./router_harness.ts";

async function kv(consulUrl: string, method: "PUT" | "DELETE", key: string, value?: string) {
  const response = await fetch(`${consulUrl}/v1/kv/${key}`, { method, body: value });
  assert.equal(response.status, 200, await response.text());
}

async function kvKeys(consulUrl: string, prefix: string): Promise<string[]> {
  const response = await fetch(`${consulUrl}/v1/kv/${prefix}?keys`);
  if (response.status === 404) {
    await response.body?.cancel();
    return [];
  }
  return await response.json() as string[];
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

Deno.test("ConsulEndedSessions shares ended sessions and sweeps the expired ones", async () => {
  const consul = await startConsulDev();
  let now = 1_800_000_000_000;
  const options = {
    consul: new ConsulClient(consul.url),
    maxAgeSeconds: 3600,
    now: () => now,
    cleanupIntervalMs: 0,
    waitSeconds: 5,
  };
  const a = new ConsulEndedSessions(options);
  const b = new ConsulEndedSessions(options);
  try {
    await Promise.all([a.ready(10_000), b.ready(10_000)]);
    const issuedAt = now / 1000 - 60;
    await a.add("session-1", issuedAt);
    assert.equal(a.has("session-1"), true);
    await eventually("b knows", () => Promise.resolve(b.has("session-1")), (known) => known);
    assert.deepEqual(await kvKeys(consul.url, ENDED_SESSIONS_KV_PREFIX), [
      `${ENDED_SESSIONS_KV_PREFIX}${issuedAt + 3600}-session-1`,
    ]);
    assert.equal(await b.sweep(), 0);
    now += 3600 * 1000;
    assert.equal(await b.sweep(), 1);
    assert.deepEqual(await kvKeys(consul.url, ENDED_SESSIONS_KV_PREFIX), []);
    await eventually("a forgets", () => Promise.resolve(a.has("session-1")), (known) => !known);
  } finally {
    await a.close();
    await b.close();
    await consul.stop();
  }
});

Deno.test("mcp-router: a session ended with DELETE on router A is 404 on router B", async () => {
  const consul = await startConsulDev();
  const key = sessionKeyText();
  const routers: RouterProcess[] = [];
  try {
    routers.push(await startRouter(consul.url, "router-a", { ROUTER_SESSION_KEY: key }));
    routers.push(await startRouter(consul.url, "router-b", { ROUTER_SESSION_KEY: key }));
    const [a, b] = routers;
    const { client, transport } = await connectV1(a.url);
    const sessionId = transport.sessionId!;
    const listOnB = async () => {
      const response = await fetch(b.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": sessionId,
          "mcp-protocol-version": "2025-11-25",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      });
      await response.body?.cancel();
      return response.status;
    };
    assert.equal(await listOnB(), 200);
    await transport.terminateSession();
    await client.close();
    await eventually("router B refuses the ended session", listOnB, (status) => status === 404);
    const keys = await kvKeys(consul.url, ENDED_SESSIONS_KV_PREFIX);
    assert.equal(keys.length, 1);
  } finally {
    for (const router of routers) await router.stop();
    await consul.stop();
  }
});
