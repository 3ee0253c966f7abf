/**
 * `./platform weight` end to end on loopback: the real CLI writes an instance's weight key in a
 * real Consul, the instance registers the weight, and the routers' weighted strategy and HAProxy
 * (`lb sync`'s syncer) follow it.
 */
import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { startLbSyncer } from "./helpers/lb_syncer.ts";
import { eventually } from "./helpers/poll.ts";
import { healthEntries, passingIds, startService } from "./helpers/service_process.ts";
import { connectV2, startRouter } from "./router_harness.ts";
import { showServers } from "../haproxy/runtime_api.ts";
import type { LbSyncer } from "../haproxy/syncer.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Runs the real CLI against the dev Consul (published port = its HTTP port). */
async function weight(consulUrl: string, ...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}ops/main.ts`, "--json", "weight", ...args],
    cwd: ROOT,
    env: { PLATFORM_CONSUL_PORT: new URL(consulUrl).port, PLATFORM_TIMEOUT: "30" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  return { code: output.code, stdout, stderr, json: output.code === 0 ? JSON.parse(stdout) : null };
}

async function consulWeight(consulUrl: string, service: string, id: string): Promise<unknown> {
  const entry = (await healthEntries(consulUrl, service)).find((item) => item.Service.ID === id);
  return (entry?.Service as { Weights?: unknown } | undefined)?.Weights;
}

Deno.test("weight sets an instance's Consul weight and the routers' weighted strategy follows", async (t) => {
  const consul = await startConsulDev();
  const echoes = ["echo-1", "echo-2"].map((id) =>
    startService("echo-agent", { consulUrl: consul.url, id })
  );
  const router = await startRouter(consul.url, "router-w", { LB_STRATEGY_AGENT_ECHO: "weighted" });
  try {
    await eventually(
      "both echoes passing",
      () => passingIds(consul.url, "agent-echo"),
      (ids) => ids.length === 2,
    );

    await t.step("bad input: exit 2 and a clear message", async () => {
      const bad = await weight(consul.url, "echo", "echo-2", "0");
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /^error: Invalid weight "0": expected an integer from 1 to 256/m);
      const unknown = await weight(consul.url, "echo", "echo-9", "3");
      assert.equal(unknown.code, 2, unknown.stderr);
      assert.match(unknown.stderr, /No instance "echo-9" of "agent-echo" in Consul/);
    });

    await t.step("weight echo echo-2 9: Consul shows it once the command returns", async () => {
      const run = await weight(consul.url, "echo", "echo-2", "9");
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.json, {
        service: "agent-echo",
        instance: "echo-2",
        key: "platform/weights/agent-echo/echo-2",
        weight: 9,
        from: 1,
        to: 9,
        dryRun: false,
      });
      assert.deepEqual(await consulWeight(consul.url, "agent-echo", "echo-2"), {
        Passing: 9,
        Warning: 1,
      });
      // Re-registering with the weight kept the instance passing.
      assert.deepEqual(await passingIds(consul.url, "agent-echo"), ["echo-1", "echo-2"]);
    });

    await t.step("the weighted strategy sends echo-2 about 9 calls in 10", async () => {
      const client = await connectV2(router.url);
      try {
        // The router has seen the new weight when echo-2 takes most of a sample.
        const counts = await eventually(
          "the router to follow the weight",
          async () => {
            const seen = new Map<string, number>();
            for (let batch = 0; batch < 20; batch++) {
              const results = await Promise.all(
                Array.from(
                  { length: 10 },
                  () => client.callTool({ name: "echo", arguments: { message: "w" } }),
                ),
              );
              for (const result of results) {
                const id = (result.structuredContent as { instance_id: string }).instance_id;
                seen.set(id, (seen.get(id) ?? 0) + 1);
              }
            }
            return seen;
          },
          (seen) => (seen.get("echo-2") ?? 0) >= 150,
          { timeoutMs: 30_000 },
        );
        // 200 calls at 9:1; under even weights echo-2 getting 150 has odds below 1e-12.
        assert.ok((counts.get("echo-1") ?? 0) > 0, JSON.stringify([...counts]));
      } finally {
        await client.close();
      }
    });

    await t.step("weight echo echo-2 default: back to Consul's default weights", async () => {
      const run = await weight(consul.url, "echo", "echo-2", "default");
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.json.to, 1);
      assert.deepEqual(await consulWeight(consul.url, "agent-echo", "echo-2"), {
        Passing: 1,
        Warning: 1,
      });
    });
  } finally {
    await router.stop();
    await Promise.all(echoes.map((echo) => echo.stop()));
    await consul.stop();
  }
});

/** HAProxy's weight of each router slot, by Consul instance ID. */
async function haproxyWeights(syncer: LbSyncer): Promise<Record<string, string>> {
  const rows = await showServers(syncer.applied.settings.runtimeSocket);
  const weights: Record<string, string> = {};
  for (const slot of syncer.applied.mcp.slots) {
    const row = rows.find((candidate) => candidate.svname === slot.name);
    if (slot.instance && row) weights[slot.instance.id] = row.weight;
  }
  return weights;
}

Deno.test("weight of a router: HAProxy gives it the new weight at runtime", async () => {
  const consul = await startConsulDev();
  const dir = await Deno.makeTempDir({ prefix: "weight-lb-" });
  const routers = [
    await startRouter(consul.url, "router-a"),
    await startRouter(consul.url, "router-b"),
  ];
  let syncer: LbSyncer | undefined;
  try {
    syncer = await startLbSyncer(consul.url, dir);
    const lb = syncer;
    await eventually(
      "both routers in HAProxy with weight 1",
      () => haproxyWeights(lb),
      (weights) => weights["router-a"] === "1" && weights["router-b"] === "1",
    );
    const run = await weight(consul.url, "router", "router-b", "4");
    assert.equal(run.code, 0, run.stderr);
    const weights = await eventually(
      "HAProxy to weigh router-b 4",
      () => haproxyWeights(lb),
      (seen) => seen["router-b"] === "4",
    );
    assert.equal(weights["router-a"], "1");
    assert.equal(lb.counters.reloads, 0, "a weight is set at runtime, without a reload");
  } finally {
    await syncer?.stop({ graceful: false });
    await Promise.all(routers.map((router) => router.stop()));
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
