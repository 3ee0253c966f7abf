/**
 * The trust boundary of issue 10, with real Consul (ACLs on, deny by default), real HAProxy and
 * real routers: hostile registrations never reach HAProxy, a rogue backend instance decides nothing
 * and gets no call, and a raw HTTP/2 peer cannot make a router hold unbounded header data.
 */
import assert from "node:assert/strict";
import { ensurePlatformAcls } from "../ops/adapters/consul_acl.ts";
import { showServers } from "../haproxy/runtime_api.ts";
import type { LbSyncer } from "../haproxy/syncer.ts";
import { createLogger } from "../services/runtime/logger.ts";
import { type ConsulDev, freePort, startConsulDev } from "./helpers/consul_dev.ts";
import { startLbSyncer } from "./helpers/lb_syncer.ts";
import { FRAME, rawFrame, startRawHttp2Peer } from "./helpers/raw_http2_peer.ts";
import { type ServiceProcess, spawnDeno, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { connectV1, resultText, type RouterProcess, startRouter } from "./router_harness.ts";
import { delay } from "../services/runtime/delay.ts";

/** A Consul dev agent with ACLs and the platform's tokens. */
async function aclConsul(): Promise<{ consul: ConsulDev; tokens: Record<string, string> }> {
  const consul = await startConsulDev({ acl: true });
  const { tokens } = await ensurePlatformAcls(consul.url, consul.managementToken!, {
    stack: "agent-platform",
  });
  return { consul, tokens: { ...tokens, management: consul.managementToken! } };
}

async function register(consulUrl: string, token: string, body: unknown): Promise<number> {
  const response = await fetch(`${consulUrl}/v1/agent/service/register`, {
    method: "PUT",
    headers: { "X-Consul-Token": token },
    body: JSON.stringify(body),
  });
  await response.body?.cancel();
  return response.status;
}

async function listToolsThrough(url: URL): Promise<string[]> {
  const { client } = await connectV1(url);
  try {
    const { tools } = await client.listTools();
    return tools.map((tool: { name: string }) => tool.name);
  } finally {
    await client.close();
  }
}

function readyRouters(syncer: LbSyncer): string[] {
  return syncer.applied.mcp.slots
    .filter((slot) => slot.state === "ready" && slot.instance)
    .map((slot) => slot.instance!.id).sort();
}

Deno.test("lb refuses hostile registrations, HAProxy keeps serving, lb keeps following", async () => {
  const { consul, tokens } = await aclConsul();
  const dir = await Deno.makeTempDir();
  const routers: RouterProcess[] = [];
  let syncer: LbSyncer | undefined;
  const lines: string[] = [];
  const logger = createLogger({ level: "warn", write: (line) => lines.push(line) });
  try {
    routers.push(
      await startRouter(consul.url, "router-a", { CONSUL_HTTP_TOKEN: tokens["mcp-router"] }),
    );
    syncer = await startLbSyncer(consul.url, dir, { token: tokens.lb, logger });
    const mcp = new URL(`http://127.0.0.1:${syncer.applied.settings.mcpPort}/mcp`);
    await eventually(
      "router-a behind HAProxy",
      () => Promise.resolve(readyRouters(syncer!)),
      (ids) => ids.join() === "router-a",
    );
    await eventually("MCP through HAProxy", () => listToolsThrough(mcp), () => true);

    // A stolen router token registers any mcp-router it likes; the name alone needs more.
    const hostile: [string, unknown][] = [
      ["router", {
        Name: "mcp-router",
        ID: "evil-address",
        Address: "127.0.0.2;shutdown frontend mcp;",
        Port: 9,
        Check: { TTL: "10m", Status: "passing" },
      }],
      ["router", {
        Name: "mcp-router",
        ID: "evil\n  server evil 127.0.0.1:9\n#",
        Address: "127.0.0.1",
        Port: 9,
        Check: { TTL: "10m", Status: "passing" },
      }],
      ["management", {
        Name: "../../catalog/nodes",
        ID: "evil-name",
        Address: "127.0.0.1",
        Port: 9,
        Tags: ["platform"],
        Meta: { lb_port: "19999" },
      }],
    ];
    for (const [who, body] of hostile) {
      const status = await register(
        consul.url,
        who === "router" ? tokens["mcp-router"] : tokens.management,
        body,
      );
      assert.equal(status, 200, `Consul took ${JSON.stringify(body)}`);
    }
    await eventually(
      "lb refusing the three",
      () => Promise.resolve(syncer!.counters.rejectedEntriesNow),
      (
        count,
      ) => count === 3,
    );
    assert.ok(lines.some((line) => line.includes("is not an IP literal")));
    assert.ok(lines.some((line) => line.includes("is not a plain name")));

    // Nothing of it reached HAProxy: its config, its servers, its frontends.
    assert.doesNotMatch(syncer.configText, /evil|shutdown frontend|catalog|127\.0\.0\.2/);
    const servers = await showServers(syncer.applied.settings.runtimeSocket);
    assert.ok(servers.every((row) => !/127\.0\.0\.2/.test(JSON.stringify(row))));
    assert.ok(Array.isArray(await listToolsThrough(mcp)), "MCP answers through HAProxy");
    assert.deepEqual(readyRouters(syncer), ["router-a"]);

    // Legitimate changes are still followed: a second router joins, the first leaves.
    routers.push(
      await startRouter(consul.url, "router-b", { CONSUL_HTTP_TOKEN: tokens["mcp-router"] }),
    );
    await eventually(
      "router-b behind HAProxy",
      () => Promise.resolve(readyRouters(syncer!)),
      (ids) => ids.join() === "router-a,router-b",
    );
    await routers[0].stop();
    await eventually(
      "router-a gone from HAProxy",
      () => Promise.resolve(readyRouters(syncer!)),
      (ids) => ids.join() === "router-b",
    );
    await eventually("MCP through HAProxy to router-b", () => listToolsThrough(mcp), () => true);
    assert.equal(syncer.counters.rejectedEntriesNow, 3);
  } finally {
    await syncer?.stop({ graceful: false });
    for (const router of routers) await router.stop();
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Polls the router's `/healthz` every 20 ms until stopped; resolves with the slowest answer. */
function watchHealthz(port: number): { stop(): Promise<{ slowestMs: number; polls: number }> } {
  let running = true;
  let slowestMs = 0;
  let polls = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      await response.body?.cancel();
      assert.equal(response.status, 200);
      slowestMs = Math.max(slowestMs, performance.now() - started);
      polls++;
      await delay(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { slowestMs, polls };
    },
  };
}

async function routerMetrics(router: RouterProcess): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${router.opsPort}/metrics`);
  return await response.text();
}

Deno.test("a rogue instance beside two honest ones changes nothing and gets no call", async () => {
  const { consul, tokens } = await aclConsul();
  const echoes: ServiceProcess[] = [];
  let router: RouterProcess | undefined;
  let rogue: ServiceProcess | undefined;
  try {
    const echoEnv = { CONSUL_HTTP_TOKEN: tokens["agent-echo"] };
    for (const id of ["echo-1", "echo-2"]) {
      echoes.push(startService("echo-agent", { consulUrl: consul.url, id, env: echoEnv }));
    }
    router = await startRouter(consul.url, "router-1", {
      CONSUL_HTTP_TOKEN: tokens["mcp-router"],
    });
    const { client } = await connectV1(router.url);
    try {
      const honest = await eventually(
        "the honest echo tool",
        async () => (await client.listTools()).tools,
        (tools: { name: string }[]) => tools.some((tool) => tool.name === "echo"),
      );
      const health = watchHealthz(router.opsPort);
      // The rogue sorts first ("a…") and holds a stolen echo token: it registers as agent-echo.
      const port = freePort();
      const rogueProcess = spawnDeno(["tests/helpers/rogue_echo.ts"], {
        env: {
          CONSUL_HTTP_ADDR: consul.url,
          CONSUL_HTTP_TOKEN: tokens["agent-echo"],
          PORT: String(port),
          ADVERTISE_ADDR: "127.0.0.1",
          SERVICE_ID: "aaa-rogue",
          CHECK_INTERVAL: "500ms",
        },
      });
      rogue = { ...rogueProcess, program: "rogue", id: "aaa-rogue", port, address: "" };
      await eventually(
        "the rogue named as dissenting",
        () => routerMetrics(router!),
        (text) => text.includes('instance="aaa-rogue"') && text.includes('tool="echo"'),
      );
      const metrics = await routerMetrics(router);
      assert.match(
        metrics,
        /mcp_router_tool_dissenting_instances\{service="agent-echo",tool="echo",instance="aaa-rogue",reason="version"\} 1/,
      );
      assert.match(router.output(), /describe a tool differently from the majority/);

      const after = (await client.listTools()).tools;
      assert.deepEqual(after, honest, "the catalog did not change");
      assert.ok(!after.some((tool: { name: string }) => tool.name === "exfiltrate"));
      for (let i = 0; i < 30; i++) {
        const result = await client.callTool({
          name: "echo",
          arguments: { message: "a".repeat(31) + "b" },
        });
        assert.match(resultText(result), /echo-[12]/);
      }
      const { slowestMs, polls } = await health.stop();
      assert.ok(polls > 5, `only ${polls} health polls`);
      assert.ok(slowestMs < 100, `/healthz took ${slowestMs.toFixed(1)} ms at worst`);
    } finally {
      await client.close();
    }
    assert.doesNotMatch(rogue.output(), /ROGUE CALLED/);
  } finally {
    await rogue?.stop();
    await router?.stop();
    for (const echo of echoes) await echo.stop();
    await consul.stop();
  }
});

/** Resident memory of a process, from `ps` (reading `/proc/<pid>` would need `--allow-all`). */
function rssBytes(pid: number): number {
  const output = new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).outputSync();
  return Number(new TextDecoder().decode(output.stdout).trim()) * 1024;
}

Deno.test("a raw HTTP/2 peer flooding header frames gets its connections closed, router memory bounded", async (t) => {
  const { consul, tokens } = await aclConsul();
  let router: RouterProcess | undefined;
  const peer = startRawHttp2Peer();
  try {
    router = await startRouter(consul.url, "router-1", {
      CONSUL_HTTP_TOKEN: tokens["mcp-router"],
    });
    // The peer registers as an echo instance; the router connects to describe it.
    const status = await register(consul.url, tokens["agent-echo"], {
      Name: "agent-echo",
      ID: "echo-raw",
      Address: "127.0.0.1",
      Port: peer.port,
      Tags: ["platform"],
      Check: { TTL: "10m", Status: "passing" },
    });
    assert.equal(status, 200);
    const before = rssBytes(router.pid);
    const cases: [string, number, Uint8Array][] = [
      ["endless CONTINUATION frames", 200_000, new Uint8Array(16)],
      ["an oversized header list", 2_000, new Uint8Array(16_384)],
    ];
    for (const [name, frames, payload] of cases) {
      await t.step(name, async () => {
        const connection = await peer.accept();
        const request = await connection.nextFrame((frame) => frame.type === FRAME.HEADERS);
        await connection.write(
          rawFrame(FRAME.HEADERS, 0, request.streamId, new Uint8Array([0x88])),
        );
        let sent = 0;
        // Bounded in count; 200,000 small frames or 2,000 of 16 KiB (32 MiB) if never closed.
        for (; sent < frames && !connection.isClosed; sent++) {
          const ok = await connection.write(
            rawFrame(FRAME.CONTINUATION, 0, request.streamId, payload),
          ).then(() => true, () => false);
          if (!ok) break;
        }
        await connection.closed;
        assert.ok(sent < frames, `the router took all ${sent} frames`);
      });
    }
    const grown = rssBytes(router.pid) - before;
    assert.ok(grown < 32 * 1024 * 1024, `router RSS grew by ${grown} bytes`);
    const health = await fetch(`http://127.0.0.1:${router.opsPort}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.match(router.output(), /protocol error/);
  } finally {
    await router?.stop();
    await peer.close();
    await consul.stop();
  }
});
