/**
 * `deno task bench lb`: HAProxy kept in step with Consul by `lb sync`, measured.
 *
 * 1. Keep-alive load through HAProxy during 100 membership changes (runtime API), then during 100
 *    forced reloads (master CLI): requests sent, failed, latency.
 * 2. Convergence from a Consul change to HAProxy's runtime state (polling `show stat`), 20 samples
 *    each for an instance turning critical, deregistered and registered.
 *
 * Everything runs on loopback: a Consul dev agent, backend processes, `lb sync` as its own process
 * (the real CLI), and the load generator here, on raw sockets so no client-side retry hides a failure.
 * Results go to `bench/results/lb-<date>.json`.
 */
import { freePort, startConsulDev } from "../tests/helpers/consul_dev.ts";
import {
  type Backend,
  deregisterInstance,
  registerInstance,
  setTtlStatus,
  spawnBackend,
} from "../tests/helpers/lb_backend.ts";
import { showServers } from "../haproxy/runtime_api.ts";
import { until } from "../tests/helpers/poll.ts";

const CONNECTIONS = Number(Deno.env.get("BENCH_CONNECTIONS") ?? 64);
const CHANGES = Number(Deno.env.get("BENCH_CHANGES") ?? 100);
const RELOADS = Number(Deno.env.get("BENCH_RELOADS") ?? 100);
const SAMPLES = Number(Deno.env.get("BENCH_SAMPLES") ?? 20);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface LoadStats {
  sent: number;
  ok: number;
  failed: number;
  reconnects: number;
  errors: Record<string, number>;
  latenciesMs: number[];
}

/** One keep-alive connection sending `GET /` until stopped; a failure is any request without a 200. */
async function connectionLoop(port: number, stats: LoadStats, stop: () => boolean): Promise<void> {
  const request = encoder.encode(`GET / HTTP/1.1\r\nHost: lb\r\n\r\n`);
  let conn: Deno.TcpConn | null = null;
  let pending: Uint8Array = new Uint8Array(0);
  const buffer = new Uint8Array(16 * 1024);
  while (!stop()) {
    try {
      if (!conn) {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
        pending = new Uint8Array(0);
        stats.reconnects++;
      }
      const started = performance.now();
      stats.sent++;
      await conn.write(request);
      // Read the head, then Content-Length bytes of body.
      let text = "";
      let headEnd = -1;
      while (headEnd < 0) {
        const read = await conn.read(buffer);
        if (read === null) throw new Error("closed before a response");
        pending = concat(pending, buffer.subarray(0, read));
        text = decoder.decode(pending);
        headEnd = text.indexOf("\r\n\r\n");
      }
      const head = text.slice(0, headEnd);
      const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      const headBytes = encoder.encode(head).length + 4;
      while (pending.length < headBytes + length) {
        const read = await conn.read(buffer);
        if (read === null) throw new Error("closed inside a response");
        pending = concat(pending, buffer.subarray(0, read));
      }
      pending = pending.slice(headBytes + length);
      const status = Number(head.split(" ")[1]);
      if (status !== 200) throw new Error(`status ${status}`);
      stats.ok++;
      stats.latenciesMs.push(performance.now() - started);
      if (/\r\nconnection:\s*close/i.test(head)) {
        conn.close();
        conn = null;
      }
    } catch (error) {
      stats.failed++;
      const key = error instanceof Error ? error.message.slice(0, 80) : String(error);
      stats.errors[key] = (stats.errors[key] ?? 0) + 1;
      try {
        conn?.close();
      } catch {
        // Already closed.
      }
      conn = null;
    }
  }
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function startLoad(port: number, maxMs: number) {
  const stats: LoadStats = {
    sent: 0,
    ok: 0,
    failed: 0,
    reconnects: 0,
    errors: {},
    latenciesMs: [],
  };
  let stopped = false;
  const deadline = Date.now() + maxMs;
  const stop = () => stopped || Date.now() > deadline;
  const done = Promise.all(
    Array.from({ length: CONNECTIONS }, () => connectionLoop(port, stats, stop)),
  );
  return {
    stats,
    async finish() {
      stopped = true;
      await done;
      return stats;
    },
  };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, index)] * 100) / 100;
}

function summary(stats: LoadStats, durationMs: number) {
  return {
    connections: CONNECTIONS,
    durationS: Math.round(durationMs) / 1000,
    sent: stats.sent,
    failed: stats.failed,
    errors: stats.errors,
    newConnections: stats.reconnects,
    rps: Math.round(stats.ok / (durationMs / 1000)),
    latencyMs: {
      p50: percentile(stats.latenciesMs, 50),
      p99: percentile(stats.latenciesMs, 99),
      max: percentile(stats.latenciesMs, 100),
    },
  };
}

function distribution(samples: number[]) {
  return {
    samples: samples.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: percentile(samples, 100),
    valuesMs: samples.map((value) => Math.round(value * 100) / 100),
  };
}

/** Polls `show stat` until the server at `addr` reaches one of `states`; returns ms since `t0`. */
async function convergence(
  socket: string,
  addr: string,
  states: string[],
  t0: number,
): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const rows = await showServers(socket);
    const row = rows.find((candidate) => candidate.addr === addr);
    const status = row?.status.split(" ")[0];
    if (status && states.includes(status)) return performance.now() - t0;
    if (!row && states.includes("GONE")) return performance.now() - t0;
  }
  const rows = (await showServers(socket)).filter((row) => row.addr === addr);
  throw new Error(
    `HAProxy never showed ${addr} in ${states.join("/")}: ${
      rows.map((row) => `${row.svname} ${row.status}`).join(", ")
    }`,
  );
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bench-lb-" });
  const consul = await startConsulDev();
  const backends: Backend[] = [];
  let lb: Deno.ChildProcess | null = null;
  try {
    for (let i = 1; i <= 4; i++) backends.push(await spawnBackend(`b${i}`, freePort()));
    for (const backend of backends) {
      await registerInstance(consul.url, backend.name, backend.port, { check: "ttl" });
    }
    const mcpPort = freePort();
    const metricsPort = freePort();
    const socket = `${dir}/admin.sock`;
    lb = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("../ops/main.ts", import.meta.url).pathname,
        "lb",
        "sync",
      ],
      env: {
        CONSUL_HTTP_ADDR: consul.url,
        LB_RUN_DIR: dir,
        LB_BIND_ADDR: "127.0.0.1",
        LB_MCP_PORT: String(mcpPort),
        LB_STATS_PORT: String(freePort()),
        LB_METRICS_PORT: String(metricsPort),
        LB_HARD_STOP_AFTER: "30s",
        LB_MAX_RELOADS: "200",
        // A benchmark is one client: the per-client limits of the front door are lifted.
        LB_CLIENT_MAX_CONN: "0",
        LB_CLIENT_MAX_RATE: "0",
        LB_CLIENT_MAX_CONCURRENT: "0",
        LB_SOURCE_MAX_RATE: "0",
        LOG_LEVEL: Deno.env.get("BENCH_LOG_LEVEL") ?? "warn",
      },
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    const addr = (backend: Backend) => `127.0.0.1:${backend.port}`;
    await until("HAProxy with four servers UP", async () => {
      try {
        const rows = await showServers(socket);
        return backends.every((b) =>
          rows.some((row) => row.addr === addr(b) && row.status.startsWith("UP"))
        );
      } catch {
        return false;
      }
    }, { timeoutMs: 30_000, intervalMs: 10 });
    const metrics = async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return Object.fromEntries(
        text.split("\n").filter((line) => line && !line.startsWith("#")).map((line) => {
          const [name, value] = line.split(" ");
          return [name, Number(value)];
        }),
      );
    };

    await until("lb sync's admin endpoint", async () => {
      try {
        await (await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).body?.cancel();
        return true;
      } catch {
        return false;
      }
    }, { intervalMs: 10 });

    // 1a. Membership changes under load: b2..b4 leave and come back in turn; b1 always serves.
    console.error(`bench lb: ${CHANGES} membership changes under ${CONNECTIONS} connections`);
    const before = await metrics();
    let started = performance.now();
    let load = startLoad(mcpPort, 300_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (let change = 0; change < CHANGES; change++) {
      const backend = backends[1 + (Math.floor(change / 2) % 3)];
      if (change % 2 === 0) await deregisterInstance(consul.url, backend.name);
      else await registerInstance(consul.url, backend.name, backend.port, { check: "ttl" });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const membership = summary(await load.finish(), performance.now() - started);
    const afterChanges = await metrics();
    const membershipResult = {
      changes: CHANGES,
      ...membership,
      reloads: afterChanges.lb_reloads_total - before.lb_reloads_total,
      runtimeUpdates: afterChanges.lb_runtime_updates_total - before.lb_runtime_updates_total,
    };
    console.error(JSON.stringify(membershipResult));

    // 1b. Forced reloads under load.
    console.error(`bench lb: ${RELOADS} forced reloads under ${CONNECTIONS} connections`);
    started = performance.now();
    load = startLoad(mcpPort, 600_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const reloadMs: number[] = [];
    let refused = 0;
    for (let reload = 0; reload < RELOADS; reload++) {
      const t0 = performance.now();
      const response = await fetch(`http://127.0.0.1:${metricsPort}/reload`, { method: "POST" });
      const outcome = await response.json();
      if (!outcome.reloaded) refused++;
      reloadMs.push(performance.now() - t0);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const reloads = summary(await load.finish(), performance.now() - started);
    const afterReloads = await metrics();
    const reloadResult = {
      reloads: afterReloads.lb_reloads_total - afterChanges.lb_reloads_total,
      refused,
      reloadDurationMs: { p50: percentile(reloadMs, 50), p99: percentile(reloadMs, 99) },
      ...reloads,
    };
    console.error(JSON.stringify(reloadResult));

    // 2. Convergence, no load: Consul change -> HAProxy runtime state.
    console.error(`bench lb: convergence, ${SAMPLES} samples each`);
    const target = backends[3];
    for (const backend of backends) {
      await registerInstance(consul.url, backend.name, backend.port, { check: "ttl" });
    }
    const isUp = async () =>
      (await showServers(socket)).some((row) =>
        row.addr === addr(target) && row.status.startsWith("UP")
      );
    await until("target UP", isUp, { intervalMs: 10 });
    const critical: number[] = [];
    const deregistered: number[] = [];
    const registered: number[] = [];
    for (let sample = 0; sample < SAMPLES; sample++) {
      let t0 = performance.now();
      await setTtlStatus(consul.url, target.name, "critical");
      critical.push(await convergence(socket, addr(target), ["MAINT"], t0));
      await setTtlStatus(consul.url, target.name, "passing");
      await until("target UP again", isUp, { intervalMs: 10 });

      t0 = performance.now();
      await deregisterInstance(consul.url, target.name);
      deregistered.push(await convergence(socket, addr(target), ["DRAIN", "MAINT", "GONE"], t0));
      // Let the drain finish so the next registration is a real addition.
      await until(
        "target out",
        async () =>
          !(await showServers(socket)).some((row) =>
            row.addr === addr(target) && !row.status.startsWith("MAINT")
          ),
        { intervalMs: 10 },
      );
      await new Promise((resolve) => setTimeout(resolve, 300));

      t0 = performance.now();
      await registerInstance(consul.url, target.name, target.port, { check: "ttl" });
      registered.push(await convergence(socket, addr(target), ["UP"], t0));
    }
    const convergenceResult = {
      critical: distribution(critical),
      deregistered: distribution(deregistered),
      registered: distribution(registered),
    };
    console.error(JSON.stringify({
      critical: convergenceResult.critical.p99,
      deregistered: convergenceResult.deregistered.p99,
      registered: convergenceResult.registered.p99,
    }));

    const haproxyVersion = new TextDecoder().decode(
      (await new Deno.Command("haproxy", { args: ["-v"], stdout: "piped" }).output()).stdout,
    ).split("\n")[0].split(" - ")[0];
    const result = {
      benchmark: "lb",
      date: new Date().toISOString(),
      command: "deno task bench lb",
      haproxy: haproxyVersion,
      deno: Deno.version.deno,
      cpus: navigator.hardwareConcurrency,
      targets: {
        failedRequests: 0,
        removalP99Ms: 50,
        additionP99Ms: 100,
      },
      membershipChanges: membershipResult,
      forcedReloads: reloadResult,
      convergenceMs: convergenceResult,
    };
    const resultsDir = new URL("./results/", import.meta.url).pathname;
    await Deno.mkdir(resultsDir, { recursive: true });
    const file = `${resultsDir}lb-${result.date.slice(0, 10)}.json`;
    await Deno.writeTextFile(file, JSON.stringify(result, null, 2) + "\n");
    console.log(JSON.stringify(
      {
        file,
        membership: {
          sent: membership.sent,
          failed: membership.failed,
          reloads: membershipResult.reloads,
        },
        reloads: { reloads: reloadResult.reloads, sent: reloads.sent, failed: reloads.failed },
        convergenceP99Ms: {
          critical: convergenceResult.critical.p99,
          deregistered: convergenceResult.deregistered.p99,
          registered: convergenceResult.registered.p99,
        },
      },
      null,
      2,
    ));
  } finally {
    if (lb) {
      lb.kill("SIGTERM");
      const timer = setTimeout(() => lb?.kill("SIGKILL"), 15_000);
      await lb.status;
      clearTimeout(timer);
    }
    for (const backend of backends) await backend.kill("SIGKILL");
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

await main();
