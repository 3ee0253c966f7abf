/**
 * `deno task bench limits`: a normal client beside a client flooding at ten times its allowed rate,
 * and the same normal client alone, side by side in one run, through the front door's limits.
 *
 * Consul, the echo agent, an mcp-router (static bearer tokens) and `lb sync` (HAProxy 2.6 with its
 * default limits: 200 calls/s with a burst of 200 and 64 in flight per client, 2000/s let through
 * per address) run as local processes, the programs the stack runs. Each phase runs the normal
 * client (token B, `tools/call` of `echo` at `--normal-rate` calls/s, every answer parsed and
 * checked) for `--seconds`; in a flood phase another process sends the same calls with token A
 * from the same address at `--flood-factor` times the per-client rate (open loop, 32 workers). The
 * normal client's failures (the goal is 0) and latency are compared with the phase without the
 * flood; the flood's answers show what the limit let through. Phases alternate their order
 * between rounds. Every load loop is bounded in calls and in time.
 *
 *   deno task bench limits [--rounds 2] [--seconds 15] [--normal-rate 50] [--flood-factor 10]
 *                          [--normal-address 127.0.0.1]
 *
 * Writes `bench/results/limits-<time>.json` and `limits-latest.md` (with a text chart).
 */
import { loadAverage, numberFlag } from "./args.ts";
import { startConsulDev } from "../tests/helpers/consul_dev.ts";
import { eventually } from "../tests/helpers/poll.ts";
import { spawnLbSync, startService } from "../tests/helpers/service_process.ts";
import { startRouter } from "../tests/router_harness.ts";
import { DEFAULT_LB_SETTINGS } from "../haproxy/model.ts";
import { HttpStatusError, Session } from "./mcp_session.ts";
import { delay } from "../services/runtime/delay.ts";

const TOKEN_NORMAL = "bench-limits-normal-token";
const TOKEN_FLOOD = "bench-limits-flood-token";
const FLOOD_WORKERS = 32;
const NORMAL_WORKERS = 4;
/** A phase may overrun its length by this much (slow answers) before its loops stop anyway. */
const OVERRUN_SECONDS = 15;

/** What a load process is told. */
interface LoadPlan {
  role: "normal" | "flood";
  url: string;
  token: string;
  /** Local address to connect from; the system's choice when absent. */
  localAddress?: string;
  seconds: number;
  /** Calls per second, paced as an open loop over `workers` sessions. */
  rate: number;
  workers: number;
}

/** What a load process reports. */
interface LoadResult {
  role: "normal" | "flood";
  /** Calls started. */
  calls: number;
  ok: number;
  /** Answers by HTTP status for the calls that were not 2xx, and `error` for the rest. */
  failures: Record<string, number>;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The first failure's message, if any. */
  firstError?: string;
}

/** One phase of one round. */
interface PhaseSample {
  round: number;
  phase: "alone" | "flood";
  normal: LoadResult;
  flood?: LoadResult;
}

// ---------------------------------------------------------------------------------------------
// Load processes

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** Runs one client's calls on a schedule of `rate` per second; prints a LoadResult as JSON. */
async function runLoad(plan: LoadPlan): Promise<void> {
  const client = plan.localAddress
    ? Deno.createHttpClient({ localAddress: plan.localAddress })
    : undefined;
  const sessions: Session[] = [];
  for (let worker = 0; worker < plan.workers; worker++) {
    const session = new Session(plan.url, worker, { token: plan.token, client });
    await session.open();
    sessions.push(session);
  }
  const total = Math.ceil(plan.rate * plan.seconds);
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let firstError: string | undefined;
  let next = 0;
  const started = performance.now();
  const hardStop = started + (plan.seconds + OVERRUN_SECONDS) * 1000;
  await Promise.all(sessions.map(async (session) => {
    while (next < total && performance.now() < hardStop) {
      const slot = next++;
      const due = started + (slot * 1000) / plan.rate;
      const wait = due - performance.now();
      if (wait > 0) await delay(wait);
      const t0 = performance.now();
      try {
        await session.echo();
        latencies.push(performance.now() - t0);
      } catch (error) {
        const key = error instanceof HttpStatusError ? String(error.status) : "error";
        failures[key] = (failures[key] ?? 0) + 1;
        firstError ??= (error as Error).message.slice(0, 300);
      }
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(sessions.map((session) => session.close()));
  client?.close();
  latencies.sort((a, b) => a - b);
  const result: LoadResult = {
    role: plan.role,
    calls: next,
    ok: latencies.length,
    failures,
    seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? NaN,
    ...(firstError === undefined ? {} : { firstError }),
  };
  console.log(JSON.stringify(result));
}

/** Starts a load process; resolves with its result. */
async function load(plan: LoadPlan): Promise<LoadResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL(import.meta.url).pathname, "load", JSON.stringify(plan)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  if (output.code !== 0 || text === "") {
    throw new Error(`The ${plan.role} load process failed (exit ${output.code})`);
  }
  return JSON.parse(text.split("\n").at(-1)!) as LoadResult;
}

// ---------------------------------------------------------------------------------------------
// The platform

interface Platform {
  url: string;
  stop(): Promise<void>;
}

/** Consul, the echo agent, a router with two static tokens, `lb sync` with its default limits. */
async function startPlatform(): Promise<Platform> {
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch(() => {});
  };
  try {
    const consul = await startConsulDev();
    stops.push(() => consul.stop());
    const dir = await Deno.makeTempDir({ prefix: "bench-limits-" });
    stops.push(() => Deno.remove(dir, { recursive: true }));
    await Deno.writeTextFile(`${dir}/tokens`, `${TOKEN_NORMAL}\n${TOKEN_FLOOD}\n`);
    const echo = startService("echo-agent", { consulUrl: consul.url, id: "bench-limits-echo" });
    stops.push(() => echo.stop());
    const router = await startRouter(consul.url, "bench-limits-router", {
      ROUTER_AUTH_TOKENS_FILE: `${dir}/tokens`,
    });
    stops.push(() => router.stop());
    // No LB_CLIENT_* here: the limits measured are the defaults.
    const lb = spawnLbSync(consul.url, `${dir}/run`, { LB_HARD_STOP_AFTER: "2s" });
    const port = lb.mcpPort;
    stops.push(() => lb.stop());
    const url = `http://127.0.0.1:${port}/mcp`;
    await eventually(
      "HAProxy and the router to serve echo",
      async () => {
        const session = new Session(url, 0, { token: TOKEN_NORMAL });
        await session.open();
        try {
          await session.echo();
        } finally {
          await session.close();
        }
        return true;
      },
      () => true,
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    return { url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function median(values: number[]): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function spread(values: number[], digits: number): string {
  const clean = values.filter((value) => !Number.isNaN(value));
  if (clean.length === 0) return "–";
  const low = Math.min(...clean).toFixed(digits);
  const high = Math.max(...clean).toFixed(digits);
  return clean.length === 1
    ? median(clean).toFixed(digits)
    : `${median(clean).toFixed(digits)} (${low}–${high})`;
}

function failed(result: LoadResult): number {
  return Object.values(result.failures).reduce((sum, count) => sum + count, 0);
}

function describeFailures(result: LoadResult): string {
  const entries = Object.entries(result.failures);
  return entries.length === 0
    ? "none"
    : entries.map(([key, count]) => `${key}: ${count}`).join(", ");
}

/** A bar of `value` against `max` in `width` characters. */
function bar(value: number, max: number, width: number): string {
  const length = max > 0 ? Math.round((value / max) * width) : 0;
  return "█".repeat(Math.max(length, value > 0 ? 1 : 0));
}

function report(samples: PhaseSample[], options: ReportOptions): string {
  const alone = samples.filter((sample) => sample.phase === "alone");
  const flooded = samples.filter((sample) => sample.phase === "flood");
  const floods = flooded.map((sample) => sample.flood!);
  const rows = [
    ["normal client alone", alone],
    ["normal client beside the flood", flooded],
  ] as const;
  const lines = [
    `# Front door limits under a flood (${options.time})`,
    "",
    `\`${options.command}\`: ${options.rounds} rounds of two ${options.seconds} s phases (order ` +
    `alternating): the normal client alone, then beside a client flooding at ` +
    `${options.floodFactor}x the per-client rate. 2 CPUs shared with other work (load average ` +
    `${options.loadBefore} before, ${options.loadAfter} after).`,
    "",
    `- Platform: local processes (Consul, echo agent, mcp-router with static bearer tokens, ` +
    `\`lb sync\` with HAProxy 2.6) with HAProxy's default limits: ` +
    `${DEFAULT_LB_SETTINGS.clientMaxRequestRate} calls/s per client (burst ` +
    `${DEFAULT_LB_SETTINGS.clientRateBurst}), ${DEFAULT_LB_SETTINGS.clientMaxConcurrent} in flight ` +
    `per client, ${DEFAULT_LB_SETTINGS.sourceMaxRequestRate}/s let through per address.`,
    `- Normal client: token B from ${options.normalAddress}, \`tools/call\` of \`echo\` at ` +
    `${options.normalRate} calls/s (open loop, ${NORMAL_WORKERS} MCP sessions), every answer ` +
    `parsed and its message checked. Latency from send to checked answer.`,
    `- Flood: token A from 127.0.0.1, the same calls at ${options.floodRate} calls/s (open loop, ` +
    `${FLOOD_WORKERS} sessions), in its own process.`,
    "",
    "Median over rounds, lowest and highest round in brackets.",
    "",
    "| normal client | calls | failed | p50 ms | p99 ms | max ms |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const [name, list] of rows) {
    const results = list.map((sample) => sample.normal);
    lines.push(
      `| ${name} | ${spread(results.map((r) => r.calls), 0)} | ` +
        `${spread(results.map(failed), 0)} | ${spread(results.map((r) => r.p50Ms), 2)} | ` +
        `${spread(results.map((r) => r.p99Ms), 2)} | ${spread(results.map((r) => r.maxMs), 2)} |`,
    );
  }
  const ratios = samples.filter((sample) => sample.phase === "flood").map((sample) => {
    const before = alone.find((other) => other.round === sample.round)!;
    return sample.normal.p99Ms / before.normal.p99Ms;
  });
  lines.push(
    "",
    `p99 beside the flood over p99 alone, per round: ${spread(ratios, 2)}.`,
    "",
    "The flood, per second of its phase:",
    "",
    "| flood | sent/s | served/s | 429/s | other failures |",
    "|---|---:|---:|---:|---|",
    `| token A | ${spread(floods.map((f) => f.calls / f.seconds), 0)} | ` +
      `${spread(floods.map((f) => f.ok / f.seconds), 0)} | ` +
      `${spread(floods.map((f) => (f.failures["429"] ?? 0) / f.seconds), 0)} | ` +
      `${
        floods.map((f) => {
          const { "429": _, ...rest } = f.failures;
          return Object.keys(rest).length === 0 ? "none" : JSON.stringify(rest);
        }).join("; ")
      } |`,
    "",
    "Normal client's p99 latency per round (ms):",
    "",
    "```",
  );
  const maxP99 = Math.max(...samples.map((sample) => sample.normal.p99Ms).filter(Number.isFinite));
  for (const sample of samples) {
    const label = `round ${sample.round + 1} ${sample.phase === "alone" ? "alone " : "+flood"}`;
    lines.push(
      `${label} ${bar(sample.normal.p99Ms, maxP99, 50).padEnd(50)} ${
        sample.normal.p99Ms.toFixed(2)
      } ms, failures ${describeFailures(sample.normal)}`,
    );
  }
  lines.push("```", "");
  const errors = samples.flatMap((sample) =>
    sample.normal.firstError
      ? [`round ${sample.round + 1} ${sample.phase}: ${sample.normal.firstError}`]
      : []
  );
  if (errors.length > 0) {
    lines.push(
      "Normal client's first failures:",
      "",
      ...errors.map((e) => `- ${e}`),
      "",
    );
  }
  return lines.join("\n");
}

interface ReportOptions {
  time: string;
  command: string;
  rounds: number;
  seconds: number;
  normalRate: number;
  floodRate: number;
  floodFactor: number;
  normalAddress: string;
  loadBefore: string;
  loadAfter: string;
}

// ---------------------------------------------------------------------------------------------
// Orchestration

function textFlag(name: string, fallback: string): string {
  const index = Deno.args.indexOf(`--${name}`);
  return index < 0 ? fallback : Deno.args[index + 1] ?? fallback;
}

async function orchestrate(): Promise<void> {
  const rounds = numberFlag("rounds", 2, { min: 1, max: 10 });
  const seconds = numberFlag("seconds", 15, { min: 1, max: 120, fractional: true });
  const normalRate = numberFlag("normal-rate", 50, {
    min: 1,
    max: DEFAULT_LB_SETTINGS.clientMaxRequestRate,
    fractional: true,
  });
  const floodFactor = numberFlag("flood-factor", 10, { min: 1, max: 50, fractional: true });
  const normalAddress = textFlag("normal-address", "127.0.0.1");
  if (!/^127\.\d+\.\d+\.\d+$/.test(normalAddress)) {
    console.error(`error: --normal-address must be a loopback address, got "${normalAddress}"`);
    Deno.exit(2);
  }
  const floodRate = floodFactor * DEFAULT_LB_SETTINGS.clientMaxRequestRate;
  const loadBefore = loadAverage();
  const platform = await startPlatform();
  const samples: PhaseSample[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const phases = round % 2 === 0 ? ["alone", "flood"] as const : ["flood", "alone"] as const;
      for (const phase of phases) {
        const normalPlan: LoadPlan = {
          role: "normal",
          url: platform.url,
          token: TOKEN_NORMAL,
          localAddress: normalAddress,
          seconds,
          rate: normalRate,
          workers: NORMAL_WORKERS,
        };
        const floodPlan: LoadPlan = {
          role: "flood",
          url: platform.url,
          token: TOKEN_FLOOD,
          seconds,
          rate: floodRate,
          workers: FLOOD_WORKERS,
        };
        const [normal, flood] = await Promise.all([
          load(normalPlan),
          phase === "flood" ? load(floodPlan) : Promise.resolve(undefined),
        ]);
        samples.push({ round, phase, normal, ...(flood ? { flood } : {}) });
        console.error(
          `round ${round + 1}/${rounds} ${phase}: normal ${normal.ok}/${normal.calls} ok, ` +
            `p50 ${normal.p50Ms.toFixed(2)} ms, p99 ${normal.p99Ms.toFixed(2)} ms` +
            (flood
              ? `; flood ${(flood.calls / flood.seconds).toFixed(0)}/s sent, ` +
                `${(flood.ok / flood.seconds).toFixed(0)}/s served, ${describeFailures(flood)}`
              : ""),
        );
        // The flood's window empties before the next phase, so phases do not overlap.
        await delay(2000);
      }
    }
  } finally {
    await platform.stop();
  }
  const time = new Date().toISOString();
  const options: ReportOptions = {
    time,
    command: `deno task bench limits ${Deno.args.join(" ")}`.trim(),
    rounds,
    seconds,
    normalRate,
    floodRate,
    floodFactor,
    normalAddress,
    loadBefore,
    loadAfter: loadAverage(),
  };
  const dir = new URL("./results/", import.meta.url);
  await Deno.writeTextFile(
    new URL(`limits-${time.slice(0, 19).replaceAll(":", "-")}.json`, dir),
    JSON.stringify({ options, samples }, null, 2) + "\n",
  );
  const text = report(samples, options);
  await Deno.writeTextFile(new URL("limits-latest.md", dir), text);
  console.log(text);
}

if (import.meta.main) {
  if (Deno.args[0] === "load") await runLoad(JSON.parse(Deno.args[1]) as LoadPlan);
  else await orchestrate();
}
