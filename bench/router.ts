/**
 * `deno task bench router`: tools/call `echo` through one mcp-router (2026-07-28 and 2025 clients),
 * and the same call straight over gRPC to the echo agent, at concurrency 1, 16 and 64, in one run.
 *
 * Consul, the echo agent, the router and the load generator are four processes: the load generator
 * (this file with `load`) shares no event loop with what it measures. Each round measures every
 * path at every level, in rotating order; the report gives the median over rounds and the spread.
 * Writes `bench/results/router-<time>.json` and `router-latest.md`.
 *
 *   deno task bench router [--rounds 3] [--calls 2000]
 *
 * The router and the echo agent run at their production log level (info).
 */
import { loadAverage, numberFlag } from "./args.ts";
import * as grpc from "@grpc/grpc-js";
import process from "node:process";
import { CapabilityClientConstructor } from "../proto/mod.ts";
import { startConsulDev } from "../tests/helpers/consul_dev.ts";
import { startService } from "../tests/helpers/service_process.ts";
import {
  connectV1,
  connectV2,
  LIFTED_CLIENT_LIMITS,
  resultText,
  startRouter,
} from "../tests/router_harness.ts";

const CONCURRENCY = [1, 16, 64];
const PATHS = ["grpc-direct", "mcp-2026", "mcp-2025", "http-2026"] as const;
const WARMUP_CALLS = 200;
const MAX_SECONDS_PER_LEVEL = 30;
const ECHO_ARGUMENTS = { message: "bench" };

type PathName = typeof PATHS[number];

interface LoadPlan {
  routerUrl: string;
  /** The router's process, whose CPU time is read from `/proc`. */
  routerPid: number;
  /** The echo agent's process, likewise. */
  echoPid: number;
  grpcAddress: string;
  rounds: number;
  calls: number;
}

/** One measurement of one path at one level in one round. */
interface Sample {
  round: number;
  path: PathName;
  concurrency: number;
  calls: number;
  failed: number;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time the router process spent per call, in microseconds (0 for the direct path). */
  routerCpuUs: number;
  /** CPU time the echo agent spent per call, in microseconds. */
  echoCpuUs: number;
  /** CPU time the load generator spent per call, in microseconds. */
  clientCpuUs: number;
}

/** User plus system CPU time of a process, in microseconds, from `/proc/<pid>/stat`. */
function processCpuMicros(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks * 10_000; // USER_HZ is 100 on Linux.
}

/** Bounded in calls and in time; latencies of failed calls are not counted. */
async function measure(
  concurrency: number,
  calls: number,
  call: () => Promise<void>,
  routerPid: number,
  echoPid: number,
): Promise<Omit<Sample, "round" | "path" | "concurrency">> {
  const latencies: number[] = [];
  const routerCpuBefore = processCpuMicros(routerPid);
  const echoCpuBefore = processCpuMicros(echoPid);
  const clientCpuBefore = process.cpuUsage();
  let issued = 0;
  let failed = 0;
  const deadline = performance.now() + MAX_SECONDS_PER_LEVEL * 1000;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (issued < calls && performance.now() < deadline) {
      issued++;
      const t0 = performance.now();
      try {
        await call();
        latencies.push(performance.now() - t0);
      } catch {
        failed++;
      }
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const routerCpu = processCpuMicros(routerPid) - routerCpuBefore;
  const echoCpu = processCpuMicros(echoPid) - echoCpuBefore;
  const clientCpu = process.cpuUsage(clientCpuBefore);
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    calls: latencies.length,
    failed,
    seconds,
    throughput: latencies.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    routerCpuUs: routerCpu / Math.max(1, latencies.length),
    echoCpuUs: echoCpu / Math.max(1, latencies.length),
    clientCpuUs: (clientCpu.user + clientCpu.system) / Math.max(1, latencies.length),
  };
}

/** The load generator: runs every round and prints the samples as JSON on stdout. */
async function runLoad(plan: LoadPlan): Promise<void> {
  const url = new URL(plan.routerUrl);
  const v2 = await connectV2(url);
  const v1 = await connectV1(url);
  const grpcClient = new CapabilityClientConstructor(
    plan.grpcAddress,
    grpc.credentials.createInsecure(),
  );
  const argumentsJson = JSON.stringify(ECHO_ARGUMENTS);
  // The same 2026-07-28 tools/call as the SDK client sends, built once and posted with fetch: the
  // router's cost without the SDK client's own (response validation, envelope building).
  const rawBody = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: {
      name: "echo",
      arguments: ECHO_ARGUMENTS,
      _meta: {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { name: "bench-http", version: "1.0.0" },
        "io.modelcontextprotocol/clientCapabilities": {},
      },
    },
  });
  const rawHeaders = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "echo",
  };
  const calls: Record<PathName, () => Promise<void>> = {
    "grpc-direct": () =>
      new Promise<void>((resolve, reject) => {
        grpcClient.invoke(
          { tool: "echo", argumentsJson, requestId: "bench" },
          new grpc.Metadata(),
          {},
          (error) => error ? reject(error) : resolve(),
        );
      }),
    "mcp-2026": async () => {
      const result = await v2.callTool({ name: "echo", arguments: ECHO_ARGUMENTS });
      if (result.isError) throw new Error(resultText(result));
    },
    "mcp-2025": async () => {
      const result = await v1.client.callTool({ name: "echo", arguments: ECHO_ARGUMENTS });
      if (result.isError) throw new Error(resultText(result));
    },
    "http-2026": async () => {
      const response = await fetch(url, { method: "POST", headers: rawHeaders, body: rawBody });
      const text = await response.text();
      // Tool calls come back as an event stream with one `data:` line carrying the answer.
      const data = response.headers.get("content-type")?.startsWith("text/event-stream")
        ? text.split("\n").findLast((line) => line.startsWith("data: "))?.slice(6) ?? ""
        : text;
      const answer = JSON.parse(data) as { result?: { isError?: boolean } };
      if (!response.ok || answer.result === undefined || answer.result.isError) {
        throw new Error(`HTTP ${response.status}: ${text}`);
      }
    },
  };
  const samples: Sample[] = [];
  try {
    // Both clients list the tools once, as real clients do, so output validators are compiled.
    await v2.listTools();
    await v1.client.listTools();
    for (const path of PATHS) {
      await measure(8, WARMUP_CALLS, calls[path], plan.routerPid, plan.echoPid);
    }
    for (let round = 0; round < plan.rounds; round++) {
      for (const concurrency of CONCURRENCY) {
        // Rotate the order so no path always runs first (or right after another's backlog).
        for (let i = 0; i < PATHS.length; i++) {
          const path = PATHS[(i + round) % PATHS.length];
          const stats = await measure(
            concurrency,
            plan.calls,
            calls[path],
            plan.routerPid,
            plan.echoPid,
          );
          samples.push({ round, path, concurrency, ...stats });
          console.error(
            `round ${round + 1}/${plan.rounds} ${path} c=${concurrency}: ` +
              `${stats.throughput.toFixed(0)} calls/s, p50 ${stats.p50Ms.toFixed(2)} ms, ` +
              `p99 ${stats.p99Ms.toFixed(2)} ms, router CPU ${
                stats.routerCpuUs.toFixed(0)
              } µs/call` +
              `${stats.failed ? `, ${stats.failed} failed` : ""}`,
          );
        }
      }
    }
  } finally {
    grpcClient.close();
    await v2.close().catch(() => {});
    await v1.client.close().catch(() => {});
  }
  console.log(JSON.stringify(samples));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function spread(values: (number | null)[], digits: number): string {
  // A level where every call failed has no latency (NaN, null once in JSON).
  if (values.some((value) => value === null || Number.isNaN(value))) return "n/a";
  const numbers = values as number[];
  const low = Math.min(...numbers).toFixed(digits);
  const high = Math.max(...numbers).toFixed(digits);
  return `${median(numbers).toFixed(digits)} (${low}–${high})`;
}

function report(samples: Sample[], plan: LoadPlan, environment: Record<string, unknown>): string {
  const of = (path: PathName, concurrency: number) =>
    samples.filter((s) => s.path === path && s.concurrency === concurrency);
  const lines = [
    `# Router benchmark (${environment.time})`,
    "",
    `\`deno task bench router --rounds ${plan.rounds} --calls ${plan.calls}\`: tools/call \`echo\`, ` +
    `${plan.calls} calls per path and level in each of ${plan.rounds} rounds; one router (log level ` +
    `info), one echo agent, Consul and the load generator, each its own process, on loopback. ` +
    `${environment.cpus} CPUs shared with other work (load average ${environment.loadBefore} before, ` +
    `${environment.loadAfter} after). Clients: \`mcp-2026\` is the SDK 2.x client pinned to ` +
    `2026-07-28, \`mcp-2025\` the SDK 1.x client on a 2025-11-25 session, \`http-2026\` the same ` +
    `2026-07-28 request posted with \`fetch\` (the router without the SDK client's own cost), ` +
    `\`grpc-direct\` grpc-js to the echo agent.`,
    "",
    "Median over rounds, with the lowest and highest round in brackets. CPU columns: CPU time " +
    "of the router process, the echo agent and the load generator per call, from `/proc` (10 ms ticks) and " +
    "`process.cpuUsage()`; unlike latency they barely depend on what else the machine runs.",
    "",
    "| path | concurrency | calls/s | p50 ms | p99 ms | router CPU µs/call | echo CPU µs/call | client CPU µs/call |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const concurrency of CONCURRENCY) {
    for (const path of PATHS) {
      const runs = of(path, concurrency);
      lines.push(
        `| ${path} | ${concurrency} | ${spread(runs.map((s) => s.throughput), 0)} | ${
          spread(runs.map((s) => s.p50Ms), 2)
        } | ${spread(runs.map((s) => s.p99Ms), 2)} | ${
          spread(runs.map((s) => s.routerCpuUs), 0)
        } | ${spread(runs.map((s) => s.echoCpuUs), 0)} | ${
          spread(runs.map((s) => s.clientCpuUs), 0)
        } |`,
      );
    }
  }
  lines.push(
    "",
    "Router overhead: p50 through the router minus p50 direct, and throughput through the router " +
      "over throughput direct, each taken within one round.",
    "",
    "| path | concurrency | added p50 ms | throughput ratio |",
    "|---|---:|---:|---:|",
  );
  for (const concurrency of CONCURRENCY) {
    const direct = of("grpc-direct", concurrency);
    for (const path of PATHS.filter((p) => p !== "grpc-direct")) {
      const runs = of(path, concurrency);
      const added = runs.map((s) => s.p50Ms - direct.find((d) => d.round === s.round)!.p50Ms);
      const ratio = runs.map((s) =>
        s.throughput / direct.find((d) => d.round === s.round)!.throughput
      );
      lines.push(`| ${path} | ${concurrency} | ${spread(added, 2)} | ${spread(ratio, 2)} |`);
    }
  }
  const failed = samples.reduce((sum, s) => sum + s.failed, 0);
  lines.push("", `Failed calls: ${failed}.`, "");
  return lines.join("\n");
}

/** Starts Consul, the echo agent and the router, runs the load generator, writes the results. */
async function orchestrate(): Promise<void> {
  const loadBefore = loadAverage();
  const consul = await startConsulDev();
  const echo = startService("echo-agent", { consulUrl: consul.url, id: "bench-echo-1" });
  let samples: Sample[] = [];
  let plan: LoadPlan | undefined;
  try {
    const router = await startRouter(consul.url, "bench-router", {
      LOG_LEVEL: "info",
      ...LIFTED_CLIENT_LIMITS,
    });
    try {
      plan = {
        routerUrl: router.url.href,
        routerPid: router.pid,
        echoPid: echo.pid,
        grpcAddress: echo.address,
        rounds: numberFlag("rounds", 3),
        calls: numberFlag("calls", 2000),
      };
      const probe = await connectV2(router.url);
      try {
        for (let i = 0; i < 100; i++) {
          if ((await probe.listTools()).tools.some((tool) => tool.name === "echo")) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        await probe.close();
      }
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          new URL(import.meta.url).pathname,
          "load",
          JSON.stringify(plan),
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).output();
      const { code, stdout } = await child;
      if (code !== 0) throw new Error(`The load generator failed with exit code ${code}`);
      samples = JSON.parse(new TextDecoder().decode(stdout)) as Sample[];
    } finally {
      await router.stop();
    }
  } finally {
    await echo.stop();
    await consul.stop();
  }
  const environment = {
    time: new Date().toISOString(),
    cpus: navigator.hardwareConcurrency,
    loadBefore,
    loadAfter: loadAverage(),
    deno: Deno.version.deno,
  };
  const text = report(samples, plan!, environment);
  const stamp = environment.time.replaceAll(":", "-").replace(/\..*/, "");
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    new URL(`router-${stamp}.json`, dir),
    JSON.stringify({ environment, plan, samples }, null, 2) + "\n",
  );
  await Deno.writeTextFile(new URL("router-latest.md", dir), text);
  console.log(text);
}

if (Deno.args[0] === "load") {
  await runLoad(JSON.parse(Deno.args[1]) as LoadPlan);
  // Closed clients can leave an idle keep-alive socket or SSE reader holding the loop open.
  Deno.exit(0);
} else await orchestrate();
