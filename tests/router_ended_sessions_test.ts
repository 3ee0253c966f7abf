/**
 * Ended sessions with real Consul and real router processes: a DELETE flood leaves a bounded number
 * of KV keys and writes (counted with Consul's own telemetry), every router refuses an ended
 * session with 404 (one started after the DELETE too), and a normal client is still served.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../services/runtime/consul/client.ts";
import { ConsulEndedSessions } from "../services/mcp-router/consul_ended_sessions.ts";
import {
  ENDED_SESSIONS_KV_PREFIX,
  parseSegmentKeys,
} from "../services/mcp-router/ended_session_segments.ts";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { type ServiceProcess, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { connectV1, type RouterProcess, sessionKeyText, startRouter } from "./router_harness.ts";

const PROTOCOL = "2025-11-25";

async function kvKeys(consulUrl: string): Promise<string[]> {
  const response = await fetch(`${consulUrl}/v1/kv/${ENDED_SESSIONS_KV_PREFIX}?keys`);
  if (response.status === 404) {
    await response.body?.cancel();
    return [];
  }
  return await response.json() as string[];
}

/** KV writes Consul has applied (single writes and transactions), from its telemetry. */
async function kvWrites(consulUrl: string): Promise<number> {
  const text = await (await fetch(`${consulUrl}/v1/agent/metrics?format=prometheus`)).text();
  let total = 0;
  for (const match of text.matchAll(/^consul_fsm_(?:kvs|txn)_count(?:\{[^}]*\})? (\d+)$/gm)) {
    total += Number(match[1]);
  }
  return total;
}

function headers(token: string, sessionId?: string): Record<string, string> {
  return {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    authorization: `Bearer ${token}`,
    "mcp-protocol-version": PROTOCOL,
    ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId }),
  };
}

/** A session opened with a bare initialize; returns its ID. */
async function initialize(router: RouterProcess, token: string): Promise<string> {
  const response = await fetch(router.url, {
    method: "POST",
    headers: headers(token),
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: PROTOCOL,
        capabilities: {},
        clientInfo: { name: "flood", version: "1" },
      },
    }),
  });
  await response.body?.cancel();
  assert.equal(response.status, 200);
  return response.headers.get("mcp-session-id")!;
}

/** DELETE of a session: its status and `Retry-After`. */
async function end(router: RouterProcess, token: string, sessionId: string) {
  const response = await fetch(router.url, {
    method: "DELETE",
    headers: headers(token, sessionId),
  });
  await response.body?.cancel();
  return { status: response.status, retryAfter: response.headers.get("retry-after") };
}

/** The status of `tools/list` in a session. */
async function listStatus(router: RouterProcess, token: string, sessionId: string) {
  const response = await fetch(router.url, {
    method: "POST",
    headers: headers(token, sessionId),
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  await response.body?.cancel();
  return response.status;
}

Deno.test("mcp-router: a DELETE flood leaves bounded KV keys and writes; ended sessions are 404 on every router", async () => {
  const consul = await startConsulDev({ telemetry: true });
  const dir = await Deno.makeTempDir({ prefix: "ended-sessions-test-" });
  const tokensFile = `${dir}/tokens`;
  await Deno.writeTextFile(tokensFile, "flood-token\nnormal-token\n");
  const env = { ROUTER_SESSION_KEY: sessionKeyText(), ROUTER_AUTH_TOKENS_FILE: tokensFile };
  const echo: ServiceProcess = startService("echo-agent", { consulUrl: consul.url, id: "echo-1" });
  const routers: RouterProcess[] = [];
  try {
    routers.push(await startRouter(consul.url, "router-a", env));
    routers.push(await startRouter(consul.url, "router-b", env));
    const [a, b] = routers;
    const normal = await connectV1(a.url, { headers: { authorization: "Bearer normal-token" } });
    await eventually(
      "echo in router A's catalog",
      () => normal.client.listTools(),
      (listed) => listed.tools.some((tool: { name: string }) => tool.name === "echo"),
    );
    const writesBefore = await kvWrites(consul.url);
    const started = performance.now();

    // 200 initialize + DELETE pairs, 20 at a time, alternating routers.
    const outcomes: { sessionId: string; status: number; retryAfter: string | null }[] = [];
    let next = 0;
    // Settled, not awaited here: a failure is asserted once the flood is over.
    const normalCalls: Promise<{ isError?: boolean } | Error>[] = [];
    await Promise.all(Array.from({ length: 20 }, async () => {
      while (next < 200) {
        const index = next++;
        const router = routers[index % 2];
        const sessionId = await initialize(router, "flood-token");
        outcomes.push({ sessionId, ...await end(router, "flood-token", sessionId) });
        if (index % 20 === 0) {
          normalCalls.push(
            normal.client.callTool({ name: "echo", arguments: { message: "hi" } })
              .then((result: unknown) => result as { isError?: boolean }, (error: Error) => error),
          );
        }
      }
    }));
    const floodSeconds = (performance.now() - started) / 1000;
    assert.equal(normalCalls.length, 10);
    for (const result of await Promise.all(normalCalls)) {
      assert.ok(!(result instanceof Error), String(result));
      assert.equal(result.isError ?? false, false);
    }

    const ended = outcomes.filter((outcome) => outcome.status === 200);
    const limited = outcomes.filter((outcome) => outcome.status === 429);
    assert.equal(ended.length + limited.length, 200, JSON.stringify(outcomes.slice(0, 5)));
    // Each router lets one client end 20 at once, then one a second.
    assert.ok(ended.length >= 40, `only ${ended.length} ended`);
    assert.ok(ended.length <= 40 + 2 * Math.ceil(floodSeconds), `${ended.length} ended`);
    for (const outcome of limited) assert.match(outcome.retryAfter ?? "", /^[1-9]\d*$/);

    // One transaction per flush interval (1 s) per router at most: not one per DELETE.
    const writes = (await kvWrites(consul.url)) - writesBefore;
    assert.ok(writes >= 2, `${writes} KV writes`);
    assert.ok(
      writes <= 2 * (Math.ceil(floodSeconds) + 2),
      `${writes} KV writes in ${floodSeconds}s`,
    );
    // One segment per router and expiry bucket (an hour), each holding many sessions.
    const keys = await kvKeys(consul.url);
    const segments = parseSegmentKeys(keys);
    assert.equal(segments.size, keys.length);
    assert.ok(keys.length <= 4, keys.join(", "));
    assert.equal([...segments.values()].reduce((sum, key) => sum + key.count, 0), ended.length);

    // Every router refuses every ended session, one started after the DELETEs too.
    routers.push(await startRouter(consul.url, "router-c", env));
    for (const router of routers) {
      for (const outcome of ended) {
        assert.equal(await listStatus(router, "flood-token", outcome.sessionId), 404);
      }
    }
    // A refused DELETE leaves its session open until its token expires.
    assert.equal(await listStatus(b, "flood-token", limited[0].sessionId), 200);

    // The normal client, served throughout, still ends its own session.
    const result = await normal.client.callTool({ name: "echo", arguments: { message: "after" } });
    assert.equal(result.isError ?? false, false);
    const normalSession = normal.transport.sessionId!;
    await normal.transport.terminateSession();
    await normal.client.close();
    for (const router of routers) {
      await eventually(
        `router ${router.id} refusing the normal client's ended session`,
        () => listStatus(router, "normal-token", normalSession),
        (status) => status === 404,
      );
    }
  } finally {
    for (const router of routers) await router.stop();
    await echo.stop();
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ConsulEndedSessions refuses past its capacity with 503 and sweeps expired buckets", async () => {
  const consul = await startConsulDev();
  let now = 1_800_000_000_000;
  const options = {
    consul: new ConsulClient(consul.url),
    maxAgeSeconds: 3600,
    now: () => now,
    sweepIntervalMs: 0,
    flushIntervalMs: 100,
    waitSeconds: 5,
  };
  const a = new ConsulEndedSessions({ ...options, writer: "a", capacity: 3 });
  const b = new ConsulEndedSessions({ ...options, writer: "b" });
  try {
    await Promise.all([a.ready(10_000), b.ready(10_000)]);
    assert.equal(a.loaded, true);
    const issuedAt = now / 1000 - 60;
    const sids = ["session-000001", "session-000002", "session-000003", "session-000004"];
    const decisions = await Promise.all(
      sids.map((sid, i) => a.end({ sid, issuedAt }, `client-${i}`)),
    );
    assert.deepEqual(decisions.slice(0, 3), [{ ended: true }, { ended: true }, { ended: true }]);
    assert.equal(decisions[3].ended, false);
    assert.equal((decisions[3] as { status: number }).status, 503);
    assert.equal(a.has("session-000004"), false);
    for (const sid of sids.slice(0, 3)) {
      await eventually(`b knows ${sid}`, () => b.has(sid), (known) => known);
    }
    const bucket = Math.ceil((issuedAt + 3600) / 150) * 150;
    assert.deepEqual(await kvKeys(consul.url), [`${ENDED_SESSIONS_KV_PREFIX}${bucket}/a/0-3`]);
    assert.equal(await b.sweep(), 0);
    now = (bucket + 61) * 1000;
    assert.equal(await b.sweep(), 1);
    assert.deepEqual(await kvKeys(consul.url), []);
    await eventually("b forgets", () => b.has("session-000001"), (known) => !known);
    // a's own bucket expired too: it has room again.
    await a.sweep();
    assert.deepEqual(await a.end({ sid: "session-000005", issuedAt: now / 1000 }, "c"), {
      ended: true,
    });
  } finally {
    await a.close();
    await b.close();
    await consul.stop();
  }
});
