/**
 * `deno task bench autoscale`: the autoscaler's reaction to a load step, on a deployed stack
 * (stack.yml: prometheus, the autoscaler, echo-agent with its policy).
 *
 * MCP clients (the official SDK) call `echo` through HAProxy's published port at `--low` calls/s,
 * step to `--high`, hold it until echo runs `--replicas` instances that all answer (plus 30 s),
 * then drop back to `--low` until echo is back at 1 replica (its down window) or `--max-seconds`.
 * Every second: calls started, failures, p50/p99, replicas asked of Swarm, instances answering.
 *
 * Results: bench/results/autoscale-<time>.json (timeline and summary) and .svg (the chart).
 *
 *   deno task bench autoscale [--low 5] [--high 60] [--replicas 3] [--max-seconds 900]
 *
 * The stack and ports are the ops tool's: PLATFORM_STACK, PLATFORM_MCP_PORT.
 */
import { parseArgs } from "node:util";
import { percentile } from "../ops/plan/stats.ts";
import { fetchWithBearer, readMcpToken } from "../ops/adapters/mcp_token.ts";
import { specReplicas } from "../tests/helpers/stack_ops.ts";
import { connectV2, resultText } from "../tests/router_harness.ts";
import { renderAutoscaleChart, type TimelineRow } from "./autoscale_chart.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    low: { type: "string", default: "5" },
    high: { type: "string", default: "60" },
    replicas: { type: "string", default: "3" },
    "max-seconds": { type: "string", default: "900" },
  },
});
function bounded(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`error: --${name} must be an integer from ${min} to ${max}, got "${text}"`);
    Deno.exit(2);
  }
  return value;
}
const LOW = bounded("low", values.low!, 1, 500);
const HIGH = bounded("high", values.high!, 1, 500);
const REPLICAS = bounded("replicas", values.replicas!, 2, 20);
const MAX_SECONDS = bounded("max-seconds", values["max-seconds"]!, 60, 3600);
const BASELINE_S = 30;
const HOLD_AFTER_S = 30;
const STACK = Deno.env.get("PLATFORM_STACK") ?? "agent-platform";
const MCP_URL = new URL(`http://127.0.0.1:${Deno.env.get("PLATFORM_MCP_PORT") ?? "8080"}/mcp`);
const ECHO = `${STACK}_echo-agent`;
// Calls in flight at most: a stalled backend must not grow the client without bound.
const MAX_IN_FLIGHT = 256;

interface Call {
  started: number;
  ended: number;
  ok: boolean;
  instance: string | null;
}

// The routers want the client token deploy keeps (none when deployed with --no-auth).
const TOKEN = await readMcpToken(new URL("..", import.meta.url).pathname, {
  env: Deno.env.toObject(),
  stack: STACK,
});
const clients = await Promise.all(
  Array.from({ length: 4 }, () => connectV2(MCP_URL, { fetch: fetchWithBearer(TOKEN) })),
);
/** Finished calls, in the order they ended. */
const calls: Call[] = [];
let startedCount = 0;
let inFlight = 0;
let rate = LOW;
let next = 0;

async function callOnce(): Promise<void> {
  const started = performance.now();
  inFlight++;
  try {
    const client = clients[next++ % clients.length];
    const result = await client.callTool({ name: "echo", arguments: { message: "bench" } });
    const text = resultText(result);
    const instance = (JSON.parse(text) as { instance_id?: string }).instance_id ?? null;
    calls.push({ started, ended: performance.now(), ok: !result.isError, instance });
  } catch {
    calls.push({ started, ended: performance.now(), ok: false, instance: null });
  } finally {
    inFlight--;
  }
}

const start = performance.now();
const elapsedS = () => (performance.now() - start) / 1000;
let stopLoad = false;
// Open loop: calls start on schedule whatever the latency (a closed loop would hide a slowdown).
const load = (async () => {
  let due = performance.now();
  while (!stopLoad) {
    due += 1000 / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    startedCount++;
    if (inFlight < MAX_IN_FLIGHT) callOnce();
    else {calls.push({
        started: performance.now(),
        ended: performance.now(),
        ok: false,
        instance: null,
      });}
  }
})();

const rows: TimelineRow[] = [];
let stepAt: number | null = null;
let replicasAt: number | null = null;
let servingAt: number | null = null;
let dropAt: number | null = null;
let backAt: number | null = null;
let counted = 0;
let startedBefore = 0;
for (let second = 1; second <= MAX_SECONDS; second++) {
  await new Promise((resolve) => setTimeout(resolve, start + second * 1000 - performance.now()));
  const ended = calls.slice(counted);
  counted = calls.length;
  const startedNow = startedCount - startedBefore;
  startedBefore = startedCount;
  const latencies = ended.filter((call) => call.ok).map((call) => call.ended - call.started);
  const replicas = await specReplicas(ECHO);
  const serving = new Set(ended.filter((call) => call.ok).map((call) => call.instance)).size;
  rows.push({
    t: second,
    rate: startedNow,
    failures: ended.filter((call) => !call.ok).length,
    p50: latencies.length ? percentile(latencies, 50) : null,
    p99: latencies.length ? percentile(latencies, 99) : null,
    replicas,
    serving,
  });
  const t = elapsedS();
  if (stepAt === null && t >= BASELINE_S) {
    stepAt = t;
    rate = HIGH;
    console.error(`bench: load step ${LOW} -> ${HIGH} calls/s at ${t.toFixed(0)}s`);
  }
  if (stepAt !== null && replicasAt === null && replicas >= REPLICAS) replicasAt = t;
  if (stepAt !== null && servingAt === null && serving >= REPLICAS) servingAt = t;
  if (servingAt !== null && dropAt === null && t >= servingAt + HOLD_AFTER_S) {
    dropAt = t;
    rate = LOW;
    console.error(`bench: load back to ${LOW} calls/s at ${t.toFixed(0)}s`);
  }
  if (dropAt !== null && replicas === 1) {
    backAt = t;
    break;
  }
}
stopLoad = true;
await load;
await new Promise((resolve) => setTimeout(resolve, 2000));
await Promise.all(clients.map((client) => client.close()));

function phaseP99(fromS: number, toS: number): number | null {
  const latencies = calls.filter((call) =>
    call.ok && call.started >= start + fromS * 1000 && call.started < start + toS * 1000
  ).map((call) => call.ended - call.started);
  return latencies.length ? Math.round(percentile(latencies, 99) * 100) / 100 : null;
}
const end = elapsedS();
const summary = {
  stack: STACK,
  low: LOW,
  high: HIGH,
  replicasWanted: REPLICAS,
  calls: calls.length,
  failed: calls.filter((call) => !call.ok).length,
  reactionToReplicasS: stepAt !== null && replicasAt !== null ? replicasAt - stepAt : null,
  reactionToServingS: stepAt !== null && servingAt !== null ? servingAt - stepAt : null,
  scaleInAfterS: dropAt !== null && backAt !== null ? backAt - dropAt : null,
  p99Ms: {
    before: phaseP99(0, stepAt ?? end),
    during: phaseP99(stepAt ?? end, servingAt ?? dropAt ?? end),
    after: phaseP99(servingAt ?? end, dropAt ?? end),
    lowAgain: phaseP99(dropAt ?? end, end),
  },
};
console.log(JSON.stringify(summary, null, 2));

const stamp = new Date().toISOString().slice(0, 19).replaceAll(":", "-");
const dir = new URL("./results/", import.meta.url).pathname;
await Deno.writeTextFile(
  `${dir}autoscale-${stamp}.json`,
  JSON.stringify({ summary, timeline: rows }, null, 2) + "\n",
);
await Deno.writeTextFile(
  `${dir}autoscale-${stamp}.svg`,
  renderAutoscaleChart(rows, `echo-agent: ${LOW} -> ${HIGH} -> ${LOW} calls/s (${STACK})`),
);
console.error(`bench: results in bench/results/autoscale-${stamp}.json and .svg`);
if (summary.failed > 0 || backAt === null) Deno.exit(1);
