/**
 * A service exposed through HAProxy by its Consul Meta (`LB_PORT` -> `lb_port`): real Consul, real
 * echo-agent processes, `lb sync` running HAProxy, and a gRPC client outside calling `Invoke` and
 * `InvokeStream` through HAProxy's exposed h2 frontend while the echo instances come and go.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { freePort, startConsulDev } from "./helpers/consul_dev.ts";
import { connect, type TestClient } from "./helpers/capability_client.ts";
import { passingIds, type ServiceProcess, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { startLbSyncer } from "./helpers/lb_syncer.ts";
import type { LbSyncer } from "../haproxy/syncer.ts";
import { showServers } from "../haproxy/runtime_api.ts";

const SERVICE = "agent-echo";
const BACKEND = `svc_${SERVICE}`;
const MAX_CALLS = 100_000;
const MAX_LOOP_MS = 60_000;
const BOTH_ANSWER_AT_LEAST = 20;
const CONCURRENCY = 4;

/** What a client loop saw: calls made, failures, and the instance that answered each call. */
interface CallStats {
  sent: number;
  failed: number;
  errors: string[];
  /** Calls cut off with their instance and made again (see {@linkcode cutOff}). */
  retried: number;
  retryReasons: string[];
  /** The instance of every answered call, in order. */
  answeredBy: string[];
}

/**
 * Whether a call failed because the connection to its instance was cut under it: HAProxy ends a
 * call whose instance died after its answer began with RST_STREAM NO_ERROR (INTERNAL here), and
 * refuses one it cannot place (UNAVAILABLE). No proxy can finish an answer its instance never
 * sent; `echo` is idempotent, so a client may call again, as the platform's own clients do.
 */
function cutOff(error: unknown): boolean {
  const { code, details } = error as grpc.ServiceError;
  return code === grpc.status.UNAVAILABLE ||
    (code === grpc.status.INTERNAL && /RST_STREAM/.test(details ?? ""));
}

/** Calls `echo` through `client` with `Invoke` and `InvokeStream` in turn, bounded in count and time. */
function startCalls(client: TestClient) {
  let stopped = false;
  const stats: CallStats = {
    sent: 0,
    failed: 0,
    errors: [],
    retried: 0,
    retryReasons: [],
    answeredBy: [],
  };
  const deadline = Date.now() + MAX_LOOP_MS;
  async function one(index: number): Promise<string> {
    const message = `call ${index}`;
    if (index % 2 === 0) {
      const response = await client.invoke("echo", { message });
      const result = JSON.parse(response.resultJson);
      assert.equal(result.message, message);
      assert.equal(result.instance_id, response.instanceId);
      return response.instanceId;
    }
    const events = await client.invokeStream("echo", { message });
    const last = events.at(-1)?.result;
    assert.ok(last, `InvokeStream ended without a result: ${JSON.stringify(events)}`);
    assert.equal(JSON.parse(last.resultJson).message, message);
    return last.instanceId;
  }
  async function callWithRetry(index: number): Promise<string> {
    try {
      return await one(index);
    } catch (error) {
      if (!cutOff(error)) throw error;
      stats.retried++;
      if (stats.retryReasons.length < 5) stats.retryReasons.push(String(error));
      return await one(index);
    }
  }
  async function worker(): Promise<void> {
    while (!stopped && Date.now() < deadline && stats.sent < MAX_CALLS) {
      const index = stats.sent++;
      try {
        stats.answeredBy.push(await callWithRetry(index));
      } catch (error) {
        stats.failed++;
        if (stats.errors.length < 5) stats.errors.push(String(error));
      }
    }
  }
  const done = Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return {
    stats,
    /** Waits until `count` more calls were answered than now. */
    async more(count: number): Promise<void> {
      const target = stats.answeredBy.length + count;
      await eventually(
        `${count} more answered calls`,
        () => Promise.resolve(stats.answeredBy.length),
        (answered) => answered >= target || stopped,
      );
    },
    async stop(): Promise<CallStats> {
      stopped = true;
      await done;
      return stats;
    },
  };
}

/** HAProxy's state of each instance in the exposed backend, by Consul service ID. */
async function haproxyStates(syncer: LbSyncer): Promise<Map<string, string>> {
  const backend = syncer.applied.exposed.find((candidate) => candidate.name === BACKEND);
  const rows = await showServers(syncer.applied.settings.runtimeSocket);
  const states = new Map<string, string>();
  for (const slot of backend?.slots ?? []) {
    const row = rows.find((candidate) =>
      candidate.pxname === BACKEND && candidate.svname === slot.name
    );
    if (slot.instance && row) states.set(slot.instance.id, row.status.split(" ")[0]);
  }
  return states;
}

/** Waits until HAProxy has every instance of `ids` UP. */
async function untilUp(syncer: LbSyncer, ids: readonly string[]): Promise<void> {
  await eventually(
    `${ids.join(", ")} UP in HAProxy`,
    () => haproxyStates(syncer),
    (states) => ids.every((id) => states.get(id) === "UP"),
  );
}

/** The instances of one scale-out-and-in; `leave` takes one of them out and returns it. */
interface ScaleCase {
  staying: ServiceProcess;
  joining: ServiceProcess;
  leave: () => Promise<ServiceProcess>;
  /** How many calls may be cut off and made again: at most those in flight at a crash. */
  maxRetried: number;
}

/**
 * Under a call loop: `joining` comes UP and both instances answer, then `leave` takes one out and
 * only the other answers; no call fails (at most `maxRetried` were made twice) and HAProxy never
 * reloads.
 */
async function scaleOutAndIn(syncer: LbSyncer, client: TestClient, scale: ScaleCase) {
  const { staying, joining } = scale;
  const loop = startCalls(client);
  await loop.more(50);
  await untilUp(syncer, [staying.id, joining.id]);
  const mark = loop.stats.answeredBy.length;
  // HAProxy's slowstart gives the newcomer a growing share: wait for a few answers from each.
  await eventually(
    `${BOTH_ANSWER_AT_LEAST} calls answered by each instance`,
    () => Promise.resolve(loop.stats.answeredBy.slice(mark)),
    (answered) =>
      [staying.id, joining.id].every((id) =>
        answered.filter((by) => by === id).length >= BOTH_ANSWER_AT_LEAST
      ),
  );
  const left = await scale.leave();
  const remaining = left === staying ? joining : staying;
  await eventually(
    "HAProxy to take the instance out",
    () => haproxyStates(syncer),
    (states) => states.get(left.id) !== "UP",
  );
  const after = loop.stats.answeredBy.length;
  await loop.more(200);
  const stats = await loop.stop();
  assert.equal(stats.failed, 0, stats.errors.join("; "));
  assert.ok(stats.retried <= scale.maxRetried, stats.retryReasons.join("; "));
  assert.deepEqual(new Set(stats.answeredBy.slice(after)), new Set([remaining.id]));
  assert.equal(syncer.counters.reloads, 0);
}

Deno.test("an exposed gRPC service answers through HAProxy while it scales 1 -> 2 -> 1", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "lb-exposed-test-" });
  const consul = await startConsulDev();
  const lbPort = freePort();
  const echoes: ServiceProcess[] = [];
  let syncer: LbSyncer | null = null;
  let client: TestClient | null = null;
  function startEcho(id: string): ServiceProcess {
    const echo = startService("echo-agent", {
      consulUrl: consul.url,
      id,
      env: { LB_PORT: String(lbPort) },
    });
    echoes.push(echo);
    return echo;
  }
  try {
    const first = startEcho("echo-x1");
    await eventually(
      "echo-x1 passing",
      () => passingIds(consul.url, SERVICE),
      (ids) => ids.length === 1,
    );
    // A reload closes the client's h2 connection with a GOAWAY (denoland/deno#36788, see the
    // README): nothing here may reload, not even someone editing the templates meanwhile.
    syncer = await startLbSyncer(consul.url, dir, { watchTemplates: false });
    const running = syncer;
    assert.match(running.configText, new RegExp(`bind 127\\.0\\.0\\.1:${lbPort} proto h2`));
    await untilUp(running, [first.id]);
    client = connect(`127.0.0.1:${lbPort}`);
    const calls = client;

    await t.step("Invoke and InvokeStream answer through HAProxy", async () => {
      const response = await calls.invoke("echo", { message: "through haproxy" });
      assert.deepEqual(JSON.parse(response.resultJson), {
        message: "through haproxy",
        instance_id: first.id,
        delay_ms: 0,
      });
      const events = await calls.invokeStream("echo", { message: "streamed", delay_ms: 20 });
      const last = events.at(-1)?.result;
      assert.ok(last, JSON.stringify(events));
      assert.deepEqual(JSON.parse(last.resultJson), {
        message: "streamed",
        instance_id: first.id,
        delay_ms: 20,
      });
    });

    await t.step(
      "1 -> 2 -> 1, the new one stopped with SIGTERM: 0 failed calls, none retried",
      async () => {
        const second = startEcho("echo-x2");
        await scaleOutAndIn(running, calls, {
          staying: first,
          joining: second,
          leave: async () => {
            const status = await second.stop("SIGTERM");
            assert.equal(status.code, 0, second.output());
            return second;
          },
          maxRetried: 0,
        });
      },
    );

    await t.step(
      "1 -> 2 -> 1, the old one killed with SIGKILL: 0 failed calls, only those cut off retried",
      async () => {
        const third = startEcho("echo-x3");
        await scaleOutAndIn(running, calls, {
          staying: first,
          joining: third,
          leave: async () => {
            await first.stop("SIGKILL");
            return first;
          },
          maxRetried: CONCURRENCY,
        });
      },
    );
  } finally {
    // The client goes first: HAProxy stopping under it would send a GOAWAY.
    client?.close();
    await syncer?.stop({ graceful: false });
    await Promise.all(echoes.map((echo) => echo.stop("SIGKILL")));
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
