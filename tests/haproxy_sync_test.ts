/**
 * `lb sync` with real HAProxy and real Consul: membership changes through the runtime API with no
 * reload and no failed call, a template change reloads exactly once, an invalid template is refused
 * while the old config serves, and a router killed with SIGKILL costs no call.
 */
import assert from "node:assert/strict";
import { freePort, startConsulDev } from "./helpers/consul_dev.ts";
import {
  type Backend,
  deregisterInstance,
  registerInstance,
  spawnBackend,
} from "./helpers/lb_backend.ts";
import { startLbSyncer } from "./helpers/lb_syncer.ts";
import type { LbSyncer } from "../haproxy/syncer.ts";
import { showServers } from "../haproxy/runtime_api.ts";
import { until } from "./helpers/poll.ts";

const TEMPLATES = new URL("../templates/", import.meta.url).pathname;

/** Sends MCP-shaped calls over keep-alive connections until stopped or bounded out. */
function startClient(url: string, concurrency = 4) {
  let stopped = false;
  const stats = { sent: 0, failed: 0, errors: [] as string[], backends: new Map<string, number>() };
  const deadline = Date.now() + 60_000;
  async function worker() {
    while (!stopped && Date.now() < deadline && stats.sent < 200_000) {
      stats.sent++;
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: stats.sent, method: "tools/list" }),
        });
        const body = await response.json();
        if (!response.ok) throw new Error(`status ${response.status}`);
        const name = body.result.backend as string;
        stats.backends.set(name, (stats.backends.get(name) ?? 0) + 1);
      } catch (error) {
        stats.failed++;
        if (stats.errors.length < 5) stats.errors.push(String(error));
      }
    }
  }
  const done = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    stats,
    async stop() {
      stopped = true;
      await done;
      return stats;
    },
  };
}

async function serverStates(socket: string): Promise<Map<string, string>> {
  const rows = await showServers(socket);
  return new Map(
    rows.filter((row) => row.pxname === "mcp-router")
      .map((row) => [`${row.addr}`, row.status.split(" ")[0]]),
  );
}

Deno.test("lb sync follows Consul without failed calls", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "lb-sync-test-" });
  const consul = await startConsulDev();
  const backends: Backend[] = [];
  let syncer: LbSyncer | null = null;
  try {
    await Deno.mkdir(`${dir}/templates/haproxy`, { recursive: true });
    const mainTemplate = await Deno.readTextFile(`${TEMPLATES}haproxy.cfg.hbs`);
    await Deno.writeTextFile(`${dir}/templates/haproxy.cfg.hbs`, mainTemplate);
    for await (const entry of Deno.readDir(`${TEMPLATES}haproxy`)) {
      await Deno.copyFile(
        `${TEMPLATES}haproxy/${entry.name}`,
        `${dir}/templates/haproxy/${entry.name}`,
      );
    }
    for (const name of ["a", "b", "c"]) backends.push(await spawnBackend(name, freePort()));
    const [a, b, c] = backends;
    await registerInstance(consul.url, "router-a", a.port);
    syncer = await startLbSyncer(consul.url, dir, {
      templatePath: `${dir}/templates/haproxy.cfg.hbs`,
    });
    const running = syncer;
    const settings = running.applied.settings;
    const url = `http://127.0.0.1:${settings.mcpPort}/mcp`;
    const addr = (backend: Backend) => `127.0.0.1:${backend.port}`;

    await t.step("routers 1 -> 3 -> 1: 0 failed calls and 0 reloads", async () => {
      const client = startClient(url);
      await until("calls to flow", () => client.stats.sent > 50, { intervalMs: 25 });
      await registerInstance(consul.url, "router-b", b.port);
      await registerInstance(consul.url, "router-c", c.port);
      await until("three routers UP", async () => {
        const states = await serverStates(settings.runtimeSocket);
        return [a, b, c].every((backend) => states.get(addr(backend)) === "UP");
      }, { intervalMs: 25 });
      await until("calls on every router", () => client.stats.backends.size === 3, {
        intervalMs: 25,
      });
      await deregisterInstance(consul.url, "router-b");
      await deregisterInstance(consul.url, "router-c");
      await until("b and c out", () => {
        const slots = running.applied.mcp.slots;
        return slots.filter((slot) => slot.instance).length === 1;
      }, { intervalMs: 25 });
      const before = client.stats.sent;
      await until("more calls after the change", () => client.stats.sent > before + 100, {
        intervalMs: 25,
      });
      const stats = await client.stop();
      assert.equal(stats.failed, 0, stats.errors.join("; "));
      assert.equal(running.counters.reloads, 0);
      assert.ok(running.counters.runtimeUpdates > 0);
    });

    await t.step("a template change: exactly one reload, 0 failed calls", async () => {
      const client = startClient(url);
      await until("calls to flow", () => client.stats.sent > 50, { intervalMs: 25 });
      const changed = mainTemplate.replace("timeout http-request 10s", "timeout http-request 11s");
      assert.notEqual(changed, mainTemplate);
      await Deno.writeTextFile(`${dir}/templates/haproxy.cfg.hbs`, changed);
      await until("a reload", () => running.counters.reloads === 1, { intervalMs: 25 });
      const before = client.stats.sent;
      await until("more calls after the reload", () => client.stats.sent > before + 200, {
        intervalMs: 25,
      });
      const stats = await client.stop();
      assert.equal(stats.failed, 0, stats.errors.join("; "));
      assert.equal(running.counters.reloads, 1);
      assert.match(await Deno.readTextFile(`${dir}/haproxy.cfg`), /timeout http-request 11s/);
    });

    await t.step(
      "an invalid template: no reload, the old config serves, the error is reported",
      async () => {
        const serving = await Deno.readTextFile(`${dir}/haproxy.cfg`);
        const broken = mainTemplate.replace(
          "  master-worker\n",
          "  master-worker\n  no-such-keyword 1\n",
        );
        await Deno.writeTextFile(`${dir}/templates/haproxy.cfg.hbs`, broken);
        await until("a refused validation", () => running.counters.failedValidations === 1, {
          intervalMs: 25,
        });
        const client = startClient(url);
        await until("calls to flow", () => client.stats.sent > 100, { intervalMs: 25 });
        const stats = await client.stop();
        assert.equal(stats.failed, 0, stats.errors.join("; "));
        assert.equal(running.counters.reloads, 1);
        assert.equal(await Deno.readTextFile(`${dir}/haproxy.cfg`), serving);
        const outcome = await running.reload();
        assert.equal(outcome.reloaded, false);
        assert.match(outcome.error ?? "", /no-such-keyword/);
        await Deno.writeTextFile(`${dir}/templates/haproxy.cfg.hbs`, mainTemplate);
      },
    );

    await t.step("a router killed with SIGKILL: no call fails", async () => {
      await registerInstance(consul.url, "router-b", b.port);
      await registerInstance(consul.url, "router-c", c.port);
      await until("three routers UP", async () => {
        const states = await serverStates(settings.runtimeSocket);
        return [a, b, c].every((backend) => states.get(addr(backend)) === "UP");
      }, { intervalMs: 25 });
      const client = startClient(url, 8);
      await until("calls on every router", () => client.stats.backends.size === 3, {
        intervalMs: 25,
      });
      await b.kill("SIGKILL");
      await until("HAProxy to mark b DOWN", async () => {
        const states = await serverStates(settings.runtimeSocket);
        return states.get(addr(b)) !== "UP";
      }, { intervalMs: 25 });
      const before = client.stats.sent;
      await until("more calls after the kill", () => client.stats.sent > before + 200, {
        intervalMs: 25,
      });
      const stats = await client.stop();
      assert.equal(stats.failed, 0, stats.errors.join("; "));
    });
  } finally {
    await syncer?.stop({ graceful: false });
    for (const backend of backends) await backend.kill("SIGKILL");
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
