/**
 * `deno task bench peers`: the platform's full MCP path side by side with two peers, in one run.
 *
 * - `platform`: HAProxy -> mcp-router -> gRPC echo agent. Against the deployed stack
 *   (`http://127.0.0.1:$PLATFORM_MCP_PORT/mcp`, default 8080) when `agent-platform` runs with every
 *   replica up, else (or with `--platform local`) Consul, the echo agent, the router and `lb sync`
 *   (HAProxy) as local processes, the same programs the stack runs.
 * - `mcp-proxy`: mcp-proxy 6.7.19 (npm, stateful Streamable HTTP, its defaults) in front of a stdio
 *   echo server on the official SDK (`bench/peer_echo_server.ts`).
 * - `sdk`: the official SDK 1.x Streamable HTTP server (stateful, JSON answers) with the same echo
 *   tool, in one process.
 *
 * One load generator (its own process, `load` mode): closed loop, keep-alive, one MCP session per
 * worker (2025-11-25 initialize, then `tools/call` of `echo` with a unique message), every answer
 * parsed and checked. Concurrency 1, 16 and 64; each round runs every target at every level, the
 * target order rotating between rounds. CPU per call of every process on each path is read from
 * `/proc/<pid>/stat` (whole process trees; for the deployed stack, the containers' processes plus
 * dockerd, containerd and the shims, and docker-proxy when the engine runs one).
 *
 * A benchmark is one client: HAProxy's per-client limits (`LB_CLIENT_MAX_CONN`, `LB_CLIENT_MAX_RATE`,
 * `LB_CLIENT_MAX_CONCURRENT`, `LB_SOURCE_MAX_RATE`) would refuse it. The local HAProxy is started
 * with them at 0 (no limit); against the deployed stack, the bench reads the lb service's settings
 * and the routers' (`ROUTER_CLIENT_MAX_RATE`, `ROUTER_CLIENT_MAX_CONCURRENT`) and refuses to run
 * when they would limit it (deploy with `PLATFORM_LB_CLIENT_MAX_CONN=0` and so on for each). The
 * report says which.
 *
 *   deno task bench peers [--rounds 3] [--calls 3000] [--platform auto|deployed|local]
 *                         [--mcp-proxy-runtime deno|node]
 *
 * mcp-proxy runs on Deno (`npm:mcp-proxy@6.7.19`, pinned in deno.json) by default; with
 * `--mcp-proxy-runtime node` its own bin runs on Node, as `npx mcp-proxy` would run it.
 *
 * Writes `bench/results/peers-<time>.json`, `peers-latest.md` and `peers-latest.svg`.
 */
import { loadAverage, numberFlag } from "./args.ts";
import { startConsulDev } from "../tests/helpers/consul_dev.ts";
import { freePort } from "../tests/helpers/consul_dev.ts";
import { eventually } from "../tests/helpers/poll.ts";
import {
  spawnDeno,
  spawnLbSync,
  spawnProgram,
  startService,
  type TestProcess,
} from "../tests/helpers/service_process.ts";
import { LIFTED_CLIENT_LIMITS, startRouter } from "../tests/router_harness.ts";
import { readMcpToken } from "../ops/adapters/mcp_token.ts";
import { Session } from "./mcp_session.ts";

const CONCURRENCY = [1, 16, 64];
const TARGETS = ["platform", "mcp-proxy", "sdk"] as const;
const WARMUP_CALLS = 300;
const MAX_SECONDS_PER_LEVEL = 30;
const MCP_PROXY = "npm:mcp-proxy@6.7.19";
const STACK = "agent-platform";
/** What the bench needs of a deployed stack's routers (`deploy` takes `PLATFORM_ROUTER_*`). */
const BENCH_ROUTER_LIMITS = { ROUTER_CLIENT_MAX_RATE: "0", ROUTER_CLIENT_MAX_CONCURRENT: "0" };
/** What the bench sets on its own HAProxy, and needs of a deployed one. */
const BENCH_CLIENT_LIMITS = {
  LB_CLIENT_MAX_CONN: "0",
  LB_CLIENT_MAX_RATE: "0",
  LB_CLIENT_MAX_CONCURRENT: "0",
  LB_SOURCE_MAX_RATE: "0",
};

type Target = typeof TARGETS[number];

/** What the load generator is told. */
interface LoadPlan {
  urls: Record<Target, string>;
  /** The bearer token a target wants (the deployed stack's), by target. */
  tokens: Partial<Record<Target, string>>;
  rounds: number;
  calls: number;
  /** Process groups whose CPU is read around each measurement, per target. */
  processes: Record<Target, ProcessGroup[]>;
}

/** A named set of process trees (root pids) whose CPU counts as one. */
interface ProcessGroup {
  name: string;
  pids: number[];
  /** Count only these processes, not their descendants (shared daemons such as dockerd). */
  alone?: boolean;
}

/** One measurement of one target at one level in one round. */
interface Sample {
  round: number;
  target: Target;
  concurrency: number;
  calls: number;
  failed: number;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU µs per call by process group, the load generator included. */
  cpuUs: Record<string, number>;
  /** The first failure, if any. */
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// CPU accounting

/** utime+stime of every process, with its parent, from `/proc`. */
function readProcesses(): Map<number, { ppid: number; ticks: number }> {
  const table = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      table.set(Number(entry.name), {
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
      });
    } catch {
      // The process ended while we read.
    }
  }
  return table;
}

/** CPU time in µs of each group: its processes and, unless `alone`, their descendants. */
function groupCpuMicros(groups: ProcessGroup[]): Record<string, number> {
  const table = readProcesses();
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of table) {
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const result: Record<string, number> = {};
  for (const group of groups) {
    let ticks = 0;
    const stack = [...group.pids];
    const seen = new Set<number>();
    while (stack.length > 0) {
      const pid = stack.pop()!;
      if (seen.has(pid)) continue;
      seen.add(pid);
      ticks += table.get(pid)?.ticks ?? 0;
      if (!group.alone) stack.push(...(children.get(pid) ?? []));
    }
    result[group.name] = ticks * 10_000; // USER_HZ is 100 on Linux.
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The load generator

/** Bounded in calls and in time; latencies of failed calls are not counted. */
async function measure(
  sessions: Session[],
  calls: number,
  groups: ProcessGroup[],
): Promise<Omit<Sample, "round" | "target" | "concurrency">> {
  const latencies: number[] = [];
  const self: ProcessGroup = { name: "load generator", pids: [Deno.pid], alone: true };
  const before = groupCpuMicros([...groups, self]);
  let issued = 0;
  let failed = 0;
  let error: string | undefined;
  const deadline = performance.now() + MAX_SECONDS_PER_LEVEL * 1000;
  const started = performance.now();
  await Promise.all(sessions.map(async (session) => {
    while (issued < calls && performance.now() < deadline) {
      issued++;
      const t0 = performance.now();
      try {
        await session.echo();
        latencies.push(performance.now() - t0);
      } catch (caught) {
        failed++;
        error ??= (caught as Error).message;
      }
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const after = groupCpuMicros([...groups, self]);
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const cpuUs: Record<string, number> = {};
  for (const name of Object.keys(after)) {
    cpuUs[name] = (after[name] - before[name]) / Math.max(1, latencies.length);
  }
  return {
    calls: latencies.length,
    failed,
    seconds,
    throughput: latencies.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    cpuUs,
    ...(error === undefined ? {} : { error }),
  };
}

/** The load generator: runs every round and prints the samples as JSON on stdout. */
async function runLoad(plan: LoadPlan): Promise<void> {
  const maxWorkers = Math.max(...CONCURRENCY);
  const sessions = {} as Record<Target, Session[]>;
  for (const target of TARGETS) {
    sessions[target] = [];
    for (let worker = 0; worker < maxWorkers; worker++) {
      const session = new Session(plan.urls[target], worker, { token: plan.tokens[target] });
      await session.open();
      sessions[target].push(session);
    }
  }
  const samples: Sample[] = [];
  try {
    for (const target of TARGETS) {
      await measure(sessions[target].slice(0, 16), WARMUP_CALLS, plan.processes[target]);
    }
    for (let round = 0; round < plan.rounds; round++) {
      for (const concurrency of CONCURRENCY) {
        for (let i = 0; i < TARGETS.length; i++) {
          const target = TARGETS[(i + round) % TARGETS.length];
          const stats = await measure(
            sessions[target].slice(0, concurrency),
            plan.calls,
            plan.processes[target],
          );
          samples.push({ round, target, concurrency, ...stats });
          console.error(
            `round ${round + 1}/${plan.rounds} ${target} c=${concurrency}: ` +
              `${stats.throughput.toFixed(0)} calls/s, p50 ${stats.p50Ms.toFixed(2)} ms, ` +
              `p99 ${stats.p99Ms.toFixed(2)} ms` +
              (stats.failed ? `, ${stats.failed} failed (${stats.error})` : ""),
          );
        }
      }
    }
  } finally {
    for (const list of Object.values(sessions)) await Promise.all(list.map((s) => s.close()));
  }
  console.log(JSON.stringify(samples));
}

// ---------------------------------------------------------------------------------------------
// The targets

/** Something the orchestrator started and stops. */
interface Running {
  url: string;
  /** The bearer token it wants; undefined when it takes calls without one. */
  token?: string;
  processes: ProcessGroup[];
  /** How it was run, for the report. */
  description: string;
  stop(): Promise<void>;
}

async function run(command: string, args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
      .output();
    return { code: output.code, stdout: new TextDecoder().decode(output.stdout) };
  } catch {
    return { code: 127, stdout: "" };
  }
}

/** Waits until `url` answers an MCP initialize. */
async function waitForMcp(
  url: string,
  what: string,
  process?: TestProcess,
  token?: string,
): Promise<void> {
  let exited = false;
  process?.exited.then(() => exited = true);
  await eventually(
    `${what} to answer MCP`,
    async () => {
      if (exited) throw new Error(`${what} exited: ${process?.output().slice(-2000)}`);
      const session = new Session(url, 0, { token });
      await session.open();
      await session.close();
      return true;
    },
    () => true,
    { timeoutMs: 60_000 },
  );
}

function processGroupOf(name: string, pid: number): ProcessGroup {
  return { name, pids: [pid] };
}

/** Pids of running processes whose command name is `comm`. */
function pidsNamed(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${entry.name}/comm`).trim() === comm) {
        pids.push(Number(entry.name));
      }
    } catch {
      // Gone.
    }
  }
  return pids;
}

/** The environment of a service's spec, by name. */
async function serviceEnv(fullName: string): Promise<Map<string, string>> {
  const inspected = await run("docker", [
    "service",
    "inspect",
    fullName,
    "--format",
    "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
  ]);
  return new Map(
    (JSON.parse(inspected.stdout || "[]") as string[] | null ?? []).map((entry) => {
      const at = entry.indexOf("=");
      return [entry.slice(0, at), entry.slice(at + 1)] as const;
    }),
  );
}

/** The deployed stack, when every replica of `agent-platform` runs. */
async function deployedPlatform(): Promise<Running | string> {
  const services = await run("docker", [
    "service",
    "ls",
    "--filter",
    `label=com.docker.stack.namespace=${STACK}`,
    "--format",
    "{{.Name}} {{.Replicas}}",
  ]);
  if (services.code !== 0) return "the Docker engine has no Swarm stack to read";
  const lines = services.stdout.trim().split("\n").filter(Boolean);
  if (lines.length === 0) return `no stack "${STACK}" is deployed`;
  const names = new Set<string>();
  for (const line of lines) {
    // A service scaled to 0, or a finished job, counts as converged.
    const match = /^(\S+) (\d+)\/(\d+)/.exec(line);
    if (!match || Number(match[2]) < Number(match[3])) {
      return `the stack "${STACK}" has not converged (${line})`;
    }
    if (Number(match[2]) > 0) names.add(match[1]);
  }
  for (const service of ["lb", "mcp-router", "echo-agent"]) {
    if (![...names].some((name) => name === `${STACK}_${service}`)) {
      return `the stack "${STACK}" runs no "${service}" task`;
    }
  }
  // A benchmark is one client: HAProxy's and the routers' per-client limits must be off.
  const wanted: [string, Record<string, string>][] = [
    ["lb", BENCH_CLIENT_LIMITS],
    ["mcp-router", BENCH_ROUTER_LIMITS],
  ];
  for (const [service, limits] of wanted) {
    const env = await serviceEnv(`${STACK}_${service}`);
    for (const [name, value] of Object.entries(limits)) {
      if (env.get(name) !== value) {
        return `the deployed ${service} service has ${name}=${
          env.get(name) ?? "(its default)"
        }: a ` +
          `benchmark is one client and that limit would refuse it; deploy with ` +
          `PLATFORM_${name}=${value} for the benchmark`;
      }
    }
  }
  const containers = await run("docker", [
    "ps",
    "--filter",
    `label=com.docker.stack.namespace=${STACK}`,
    "--format",
    '{{.ID}} {{.Label "com.docker.swarm.service.name"}}',
  ]);
  const processes: ProcessGroup[] = [];
  for (const line of containers.stdout.trim().split("\n").filter(Boolean)) {
    const [id, service] = line.split(" ");
    const inspected = await run("docker", ["inspect", "--format", "{{.State.Pid}}", id]);
    const pid = Number(inspected.stdout.trim());
    if (pid > 0) processes.push(processGroupOf(service.replace(`${STACK}_`, ""), pid));
  }
  processes.push({ name: "dockerd", pids: pidsNamed("dockerd"), alone: true });
  processes.push({ name: "containerd", pids: pidsNamed("containerd"), alone: true });
  processes.push({ name: "containerd-shim", pids: pidsNamed("containerd-shim"), alone: true });
  const proxies = pidsNamed("docker-proxy");
  if (proxies.length > 0) processes.push({ name: "docker-proxy", pids: proxies, alone: true });
  const port = Deno.env.get("PLATFORM_MCP_PORT") ?? "8080";
  const url = `http://127.0.0.1:${port}/mcp`;
  // The routers want the client token deploy keeps (none when deployed with --no-auth).
  const token = await readMcpToken(new URL("..", import.meta.url).pathname, {
    env: Deno.env.toObject(),
    stack: STACK,
  });
  await waitForMcp(url, "the deployed platform", undefined, token);
  return {
    url,
    token,
    processes,
    description: `the deployed stack "${STACK}" through HAProxy at ${url} (lb with ` +
      `every per-client limit at 0)`,
    stop: () => Promise.resolve(),
  };
}

/** Consul, the echo agent, the router and `lb sync` (HAProxy) as local processes. */
async function localPlatform(): Promise<Running> {
  const consul = await startConsulDev();
  const echo = startService("echo-agent", { consulUrl: consul.url, id: "bench-echo-1" });
  const stops: (() => Promise<unknown>)[] = [() => consul.stop(), () => echo.stop()];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch(() => {});
  };
  try {
    const router = await startRouter(consul.url, "bench-router-1", LIFTED_CLIENT_LIMITS);
    stops.push(() => router.stop());
    const dir = await Deno.makeTempDir({ prefix: "bench-peers-lb-" });
    stops.push(() => Deno.remove(dir, { recursive: true }));
    const lb = spawnLbSync(consul.url, `${dir}/run`, {
      LB_HARD_STOP_AFTER: "2s",
      // The in-flight cap per client (64 is the top level here) and the source address' ceiling
      // (2000/s, which the platform path may pass) are lifted too.
      ...BENCH_CLIENT_LIMITS,
    });
    const port = lb.mcpPort;
    stops.push(() => lb.stop());
    const url = `http://127.0.0.1:${port}/mcp`;
    await waitForMcp(url, "HAProxy in front of the router");
    const haproxy = pidsNamed("haproxy").filter((pid) => {
      try {
        return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(dir);
      } catch {
        return false;
      }
    });
    return {
      url,
      processes: [
        { name: "haproxy", pids: haproxy },
        { name: "lb sync", pids: [lb.pid], alone: true },
        processGroupOf("router", router.pid),
        processGroupOf("echo agent", echo.pid),
        processGroupOf("consul", consulPid(consul.ports.http)),
      ],
      description: `local processes (Consul, echo agent, mcp-router, \`lb sync\` with HAProxy ` +
        `2.6) at ${url}, HAProxy started with every per-client limit at 0; ` +
        `the run against the deployed stack is for an engine with ` +
        `\`${STACK}\` converged`,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function consulPid(httpPort: number): number {
  return pidsNamed("consul").find((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(`-http-port=${httpPort}`);
    } catch {
      return false;
    }
  }) ?? 0;
}

/**
 * mcp-proxy's own bin under Node, the runtime `npx mcp-proxy` uses: Deno lays out a `node_modules`
 * tree for it in a temporary directory, from the shared npm cache.
 */
async function mcpProxyNodeBin(): Promise<{ bin: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "bench-peers-mcp-proxy-" });
  const version = MCP_PROXY.slice(MCP_PROXY.lastIndexOf("@") + 1);
  await Deno.writeTextFile(
    `${dir}/package.json`,
    JSON.stringify({ private: true, dependencies: { "mcp-proxy": version } }),
  );
  const installed = await new Deno.Command(Deno.execPath(), {
    args: ["install", "--quiet"],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!installed.success) {
    await Deno.remove(dir, { recursive: true });
    throw new Error(
      `Cannot lay out mcp-proxy for Node: ${new TextDecoder().decode(installed.stderr)}`,
    );
  }
  return { bin: `${dir}/node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs`, dir };
}

async function mcpProxy(runtime: "deno" | "node"): Promise<Running> {
  const port = freePort();
  const proxyArgs = [
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--server",
    "stream",
    "--",
    Deno.execPath(),
    "run",
    "--allow-all",
    "--cached-only",
    "bench/peer_echo_server.ts",
  ];
  let proxy: TestProcess;
  let cleanup = () => Promise.resolve();
  if (runtime === "node") {
    const { bin, dir } = await mcpProxyNodeBin();
    cleanup = () => Deno.remove(dir, { recursive: true });
    proxy = spawnProgram("node", [bin, ...proxyArgs]);
  } else proxy = spawnDeno([MCP_PROXY, ...proxyArgs]);
  const url = `http://127.0.0.1:${port}/mcp`;
  try {
    await waitForMcp(url, "mcp-proxy", proxy);
  } catch (error) {
    await proxy.stop("SIGKILL");
    await cleanup();
    throw new Error(`mcp-proxy did not start: ${proxy.output().slice(-2000)}`, { cause: error });
  }
  return {
    url,
    processes: [processGroupOf("mcp-proxy + stdio server", proxy.pid)],
    description: `${MCP_PROXY.slice(4)} (stateful Streamable HTTP, its defaults) on ` +
      `${runtime === "node" ? `Node ${nodeVersion()}` : "Deno"}, in front of the stdio echo ` +
      "server `bench/peer_echo_server.ts` (official SDK 1.32, on Deno)",
    stop: async () => {
      await proxy.stop();
      await cleanup();
    },
  };
}

function nodeVersion(): string {
  try {
    const output = new Deno.Command("node", { args: ["--version"], stdout: "piped" }).outputSync();
    return new TextDecoder().decode(output.stdout).trim();
  } catch {
    return "(unknown version)";
  }
}

async function sdkServer(): Promise<Running> {
  const port = freePort();
  const server = spawnDeno(["bench/peer_echo_server.ts", "serve", String(port)]);
  const url = `http://127.0.0.1:${port}/mcp`;
  try {
    await waitForMcp(url, "the SDK server", server);
  } catch (error) {
    await server.stop("SIGKILL");
    throw new Error(`The SDK server did not start: ${server.output().slice(-2000)}`, {
      cause: error,
    });
  }
  return {
    url,
    processes: [processGroupOf("sdk server", server.pid)],
    description: "the official SDK 1.32 Streamable HTTP transport (stateful, JSON answers) on " +
      "`Deno.serve`, one process (`bench/peer_echo_server.ts serve`)",
    stop: async () => void await server.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// The report

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function spread(values: number[], digits: number): string {
  if (values.length === 0 || values.some((value) => value === null || Number.isNaN(value))) {
    return "n/a";
  }
  const low = Math.min(...values).toFixed(digits);
  const high = Math.max(...values).toFixed(digits);
  return `${median(values).toFixed(digits)} (${low}–${high})`;
}

function report(
  samples: Sample[],
  plan: LoadPlan,
  descriptions: Record<Target, string>,
  environment: Record<string, unknown>,
): string {
  const of = (target: Target, concurrency: number) =>
    samples.filter((s) => s.target === target && s.concurrency === concurrency);
  const lines = [
    `# Peers benchmark (${environment.time})`,
    "",
    `\`deno task bench peers --rounds ${plan.rounds} --calls ${plan.calls}` +
    `${
      Deno.args.includes("--mcp-proxy-runtime") ? ` --mcp-proxy-runtime ${mcpProxyRuntime()}` : ""
    }` +
    `${
      Deno.args.includes("--platform") ? ` --platform ${platformMode()}` : ""
    }\`: \`tools/call\` of ` +
    `an echo tool, ${plan.calls} calls per target and level in each of ${plan.rounds} rounds ` +
    `(target order rotating), from one closed-loop keep-alive load generator in its own process, ` +
    `one MCP session (2025-11-25) per worker, every answer parsed and its message checked. ` +
    `${environment.cpus} CPUs shared with other work (load average ${environment.loadBefore} ` +
    `before, ${environment.loadAfter} after).`,
    "",
    ...TARGETS.map((target) => `- \`${target}\`: ${descriptions[target]}.`),
    "",
    "Median over rounds, lowest and highest round in brackets.",
    "",
    "| target | concurrency | calls/s | p50 ms | p99 ms | failed |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const concurrency of CONCURRENCY) {
    for (const target of TARGETS) {
      const runs = of(target, concurrency);
      lines.push(
        `| ${target} | ${concurrency} | ${spread(runs.map((s) => s.throughput), 0)} | ${
          spread(runs.map((s) => s.p50Ms), 2)
        } | ${spread(runs.map((s) => s.p99Ms), 2)} | ${
          runs.reduce((sum, s) => sum + s.failed, 0)
        } |`,
      );
    }
  }
  lines.push(
    "",
    "Ratios within each round (platform over peer), median and range over rounds: throughput, " +
      "and p50 latency (below 1: the platform answers faster).",
    "",
    "| concurrency | throughput vs mcp-proxy | throughput vs sdk | p50 vs mcp-proxy | p50 vs sdk |",
    "|---:|---:|---:|---:|---:|",
  );
  for (const concurrency of CONCURRENCY) {
    const platform = of("platform", concurrency);
    const ratio = (peer: Target, field: "throughput" | "p50Ms") =>
      spread(
        platform.map((s) => {
          const other = of(peer, concurrency).find((o) => o.round === s.round);
          return other ? s[field] / other[field] : NaN;
        }),
        2,
      );
    lines.push(
      `| ${concurrency} | ${ratio("mcp-proxy", "throughput")} | ${ratio("sdk", "throughput")} | ${
        ratio("mcp-proxy", "p50Ms")
      } | ${ratio("sdk", "p50Ms")} |`,
    );
  }
  lines.push(
    "",
    "CPU time per call of each process (µs, median over rounds; `/proc/<pid>/stat`, 10 ms ticks, " +
      "whole process trees):",
    "",
  );
  for (const target of TARGETS) {
    const names = Object.keys(samples.find((s) => s.target === target)?.cpuUs ?? {});
    lines.push(
      `| ${target} | ${names.join(" | ")} | total |`,
      `|---|${names.map(() => "---:").join("|")}|---:|`,
    );
    for (const concurrency of CONCURRENCY) {
      const runs = of(target, concurrency);
      const cells = names.map((name) => median(runs.map((s) => s.cpuUs[name])));
      const total = median(
        runs.map((s) => Object.values(s.cpuUs).reduce((sum, value) => sum + value, 0)),
      );
      lines.push(
        `| c=${concurrency} | ${cells.map((c) => c.toFixed(0)).join(" | ")} | ${
          total.toFixed(0)
        } |`,
      );
    }
    lines.push("");
  }
  const failed = samples.reduce((sum, s) => sum + s.failed, 0);
  lines.push(`Failed calls: ${failed}.`, "");
  return lines.join("\n");
}

/** A grouped bar chart of the median throughput per target and level. */
function chart(samples: Sample[]): string {
  const colors: Record<Target, string> = {
    platform: "#2b6cb0",
    "mcp-proxy": "#dd6b20",
    sdk: "#718096",
  };
  const medians = CONCURRENCY.map((concurrency) =>
    TARGETS.map((target) =>
      median(
        samples.filter((s) => s.target === target && s.concurrency === concurrency).map((s) =>
          s.throughput
        ),
      ) || 0
    )
  );
  const max = Math.max(1, ...medians.flat());
  const width = 640;
  const height = 360;
  const left = 60;
  const bottom = 300;
  const top = 40;
  const groupWidth = (width - left - 20) / CONCURRENCY.length;
  const barWidth = (groupWidth - 30) / TARGETS.length;
  const scale = (value: number) => ((bottom - top) * value) / max;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">` +
    `tools/call echo, calls/s (median over rounds)</text>`,
    `<line x1="${left}" y1="${bottom}" x2="${width - 10}" y2="${bottom}" stroke="black"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="black"/>`,
  ];
  for (let tick = 0; tick <= 4; tick++) {
    const value = (max * tick) / 4;
    const y = bottom - scale(value);
    parts.push(
      `<line x1="${left - 4}" y1="${y}" x2="${left}" y2="${y}" stroke="black"/>`,
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end">${value.toFixed(0)}</text>`,
    );
  }
  CONCURRENCY.forEach((concurrency, g) => {
    const x0 = left + 15 + g * groupWidth;
    TARGETS.forEach((target, t) => {
      const value = medians[g][t];
      const x = x0 + t * barWidth;
      const h = scale(value);
      parts.push(
        `<rect x="${x}" y="${bottom - h}" width="${barWidth - 4}" height="${h}" ` +
          `fill="${colors[target]}"/>`,
        `<text x="${x + (barWidth - 4) / 2}" y="${bottom - h - 4}" text-anchor="middle" ` +
          `font-size="10">${value.toFixed(0)}</text>`,
      );
    });
    parts.push(
      `<text x="${x0 + (TARGETS.length * barWidth) / 2}" y="${bottom + 18}" ` +
        `text-anchor="middle">C=${concurrency}</text>`,
    );
  });
  TARGETS.forEach((target, t) => {
    const x = left + 10 + t * 150;
    parts.push(
      `<rect x="${x}" y="${height - 28}" width="12" height="12" fill="${colors[target]}"/>`,
      `<text x="${x + 18}" y="${height - 18}">${target}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// The orchestrator

function platformMode(): "auto" | "deployed" | "local" {
  const index = Deno.args.indexOf("--platform");
  const value = index < 0 ? "auto" : Deno.args[index + 1];
  if (value !== "auto" && value !== "deployed" && value !== "local") {
    console.error(`error: --platform must be auto, deployed or local, got "${value}"`);
    Deno.exit(2);
  }
  return value;
}

function mcpProxyRuntime(): "deno" | "node" {
  const index = Deno.args.indexOf("--mcp-proxy-runtime");
  const value = index < 0 ? "deno" : Deno.args[index + 1];
  if (value !== "deno" && value !== "node") {
    console.error(`error: --mcp-proxy-runtime must be deno or node, got "${value}"`);
    Deno.exit(2);
  }
  return value;
}

async function startPlatform(): Promise<Running> {
  const mode = platformMode();
  if (mode === "local") return await localPlatform();
  const deployed = await deployedPlatform();
  if (typeof deployed !== "string") return deployed;
  if (mode === "deployed") throw new Error(`Cannot run against the deployed stack: ${deployed}`);
  console.error(`bench peers: ${deployed}; running the platform path as local processes`);
  return await localPlatform();
}

/** Starts the three targets, runs the load generator, writes the results. */
async function orchestrate(): Promise<void> {
  const loadBefore = loadAverage();
  const rounds = numberFlag("rounds", 3);
  const calls = numberFlag("calls", 3000);
  const running: Partial<Record<Target, Running>> = {};
  let samples: Sample[] = [];
  let plan: LoadPlan | undefined;
  try {
    running.platform = await startPlatform();
    running["mcp-proxy"] = await mcpProxy(mcpProxyRuntime());
    running.sdk = await sdkServer();
    const all = running as Record<Target, Running>;
    plan = {
      urls: { platform: all.platform.url, "mcp-proxy": all["mcp-proxy"].url, sdk: all.sdk.url },
      tokens: { platform: all.platform.token },
      rounds,
      calls,
      processes: {
        platform: all.platform.processes,
        "mcp-proxy": all["mcp-proxy"].processes,
        sdk: all.sdk.processes,
      },
    };
    const { code, stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", new URL(import.meta.url).pathname, "load", JSON.stringify(plan)],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (code !== 0) throw new Error(`The load generator failed with exit code ${code}`);
    samples = JSON.parse(new TextDecoder().decode(stdout)) as Sample[];
  } finally {
    for (const target of TARGETS) await running[target]?.stop();
  }
  const environment = {
    time: new Date().toISOString(),
    cpus: navigator.hardwareConcurrency,
    loadBefore,
    loadAfter: loadAverage(),
    deno: Deno.version.deno,
  };
  const descriptions = {
    platform: running.platform!.description,
    "mcp-proxy": running["mcp-proxy"]!.description,
    sdk: running.sdk!.description,
  };
  const text = report(samples, plan!, descriptions, environment);
  const stamp = environment.time.replaceAll(":", "-").replace(/\..*/, "");
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    new URL(`peers-${stamp}.json`, dir),
    JSON.stringify({ environment, plan, descriptions, samples }, null, 2) + "\n",
  );
  await Deno.writeTextFile(new URL("peers-latest.md", dir), text);
  await Deno.writeTextFile(new URL("peers-latest.svg", dir), chart(samples));
  console.log(text);
  if (samples.some((s) => s.failed > 0)) {
    console.error("error: some calls failed; see the report");
    Deno.exit(1);
  }
}

if (Deno.args[0] === "load") {
  await runLoad(JSON.parse(Deno.args[1]) as LoadPlan);
  // Keep-alive sockets can hold the loop open.
  Deno.exit(0);
} else await orchestrate();
