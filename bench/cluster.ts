/**
 * `deno task bench cluster [--rates 50,200] [--keep]`: what losing a node costs on a real 3-node
 * Swarm made on this machine (`cluster up --nodes 3`). For each rate, MCP clients call through
 * HAProxy on this node while `platform-3` (a worker running echo instances and a router) is cut
 * off; the benchmark measures the time from the cut to
 *   (a) its instances out of Consul's passing set,
 *   (b) HAProxy no longer sending to its router (not UP in HAProxy's stats),
 *   (c) replacements passing in Consul on the other nodes,
 * and the calls that failed; then it heals the node and waits until everything agrees again.
 * Results: bench/results/cluster-<time>.json and cluster-latest.md. The cluster and the stack are
 * removed at the end unless `--keep`.
 */
import { parseArgs } from "node:util";
import { readHaproxyView } from "../haproxy/stats_view.ts";
import { readStatsAuth } from "../ops/adapters/mcp_token.ts";
import { e2eStack, explain, type OpsRun } from "../tests/helpers/e2e_stack.ts";
import { until } from "../tests/helpers/poll.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { rates: { type: "string", default: "50,200" }, keep: { type: "boolean" } },
});
const rates = values.rates!.split(",").map(Number);
if (rates.some((rate) => !(Number.isInteger(rate) && rate > 0 && rate <= 500))) {
  console.error("error: --rates must be a comma-separated list of integers in 1..500");
  Deno.exit(2);
}

const NODE = "platform-3";
const E2E = e2eStack("ap-bench-cluster");
const POLL_MS = 100;

function must(run: OpsRun, what: string): OpsRun {
  if (run.code !== 0) {
    console.error(`error: ${what} failed\n${explain(run)}`);
    Deno.exit(1);
  }
  return run;
}

function log(text: string): void {
  console.error(`bench cluster: ${text}`);
}

/** Addresses (`ip:port`) of the routers registered on `node`. */
async function routersOn(node: string): Promise<string[]> {
  const response = await E2E.consulFetch("/v1/health/service/mcp-router");
  const entries = await response.json() as {
    Node: { Node: string };
    Service: { Address: string; Port: number };
  }[];
  return entries.filter((entry) => entry.Node.Node === node)
    .map((entry) => `${entry.Service.Address}:${entry.Service.Port}`);
}

interface CutResult {
  rate: number;
  echoOnNode: number;
  routersOnNode: number;
  outOfConsulMs: number;
  outOfHaproxyMs: number | null;
  replacedMs: number;
  calls: number;
  failures: number;
  sessionsLost: number;
  p99Ms: number | null;
  /** The probe's failed calls by message, to tell a refused call from a cut one. */
  errors: Record<string, number>;
}

async function cutOnce(rate: number): Promise<CutResult> {
  const echo = (await E2E.instances("agent-echo")).filter((entry) => entry.node === NODE);
  const routers = await routersOn(NODE);
  const probe = await E2E.startHostMcpProbe(rate, 900);
  // Let the load settle on every instance before the cut.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const cutAt = Date.now();
  must(await E2E.ops("cluster", "cut", NODE), `cluster cut ${NODE}`);
  let outOfConsulMs = -1;
  let outOfHaproxyMs: number | null = routers.length === 0 ? null : -1;
  await until("the cut node to leave Consul and HAProxy", async () => {
    const now = Date.now() - cutAt;
    if (outOfConsulMs < 0) {
      const passing = new Set(await E2E.passingIds("agent-echo"));
      if (!echo.some((entry) => passing.has(entry.id))) outOfConsulMs = now;
    }
    if (outOfHaproxyMs === -1) {
      const view = await readHaproxyView(E2E.statsUrl, "mcp-router", {
        credentials: await readStatsAuth(E2E.root, { env: E2E.env }),
      });
      if (view.reachable) {
        const up = view.servers.filter((server) => server.state === "UP")
          .map((server) => server.address);
        if (!routers.some((address) => up.includes(address))) outOfHaproxyMs = now;
      }
    }
    return outOfConsulMs >= 0 && outOfHaproxyMs !== -1;
  }, { timeoutMs: 60_000, intervalMs: POLL_MS });
  await until("replacements to pass in Consul", async () => {
    return (await E2E.passingIds("agent-echo")).length === 3 &&
      (await E2E.passingIds("mcp-router")).length === 3;
  }, { timeoutMs: 300_000, intervalMs: POLL_MS * 5 });
  const replacedMs = Date.now() - cutAt;
  probe.stop();
  const result = await probe.result();
  must(await E2E.ops("cluster", "heal", NODE), `cluster heal ${NODE}`);
  await until("the stack to agree again after heal", async () => {
    const status = await E2E.ops("status");
    return status.json?.agreed === true;
  }, { timeoutMs: 300_000, intervalMs: 1000 });
  // Spread again: Swarm does not move tasks back to a node that returns.
  for (
    const [service, count] of [
      ["echo", "1"],
      ["echo", "3"],
      ["router", "1"],
      ["router", "3"],
      ["weather", "1"],
      ["weather", "2"],
      ["itinerary", "1"],
      ["itinerary", "2"],
    ]
  ) {
    must(await E2E.ops("scale", service, count), `scale ${service} ${count}`);
  }
  return {
    rate,
    echoOnNode: echo.length,
    routersOnNode: routers.length,
    outOfConsulMs,
    outOfHaproxyMs,
    replacedMs,
    calls: result.json?.calls ?? 0,
    failures: result.json?.failures ?? -1,
    sessionsLost: result.json?.sessions?.lost ?? -1,
    p99Ms: result.json?.latencyMs?.p99 ?? null,
    errors: result.json?.errors ?? {},
  };
}

const started = new Date();
log("making a 3-node cluster and deploying the stack");
must(await E2E.ops("cluster", "up", "--nodes", "3"), "cluster up");
must(await E2E.ops("destroy", "--volumes"), "destroy");
must(await E2E.ops("deploy"), "deploy");
must(await E2E.ops("autoscale", "pause", "echo"), "autoscale pause echo");
must(await E2E.ops("scale", "echo", "3"), "scale echo 3");
must(await E2E.ops("scale", "router", "3"), "scale router 3");
// Two of every tool, as a user who wants to survive a node would run them: with one, a lost node
// can take a tool away until Swarm replaces it, and that outage is not what this measures.
must(await E2E.ops("scale", "weather", "2"), "scale weather 2");
must(await E2E.ops("scale", "itinerary", "2"), "scale itinerary 2");

const results: CutResult[] = [];
try {
  for (const rate of rates) {
    log(`cutting ${NODE} under ${rate} calls/s`);
    const result = await cutOnce(rate);
    log(JSON.stringify(result));
    results.push(result);
  }
} finally {
  if (!values.keep) {
    log("removing the stack and the cluster");
    await E2E.ops("destroy", "--volumes");
    await E2E.ops("cluster", "down");
  }
}

const stamp = started.toISOString().replace(/[:.]/g, "-").slice(0, 19);
const dir = new URL("./results/", import.meta.url).pathname;
await Deno.mkdir(dir, { recursive: true });
await Deno.writeTextFile(
  `${dir}cluster-${stamp}.json`,
  JSON.stringify({ started: started.toISOString(), node: NODE, results }, null, 2) + "\n",
);
const rows = results.map((r) =>
  `| ${r.rate} | ${r.echoOnNode} echo, ${r.routersOnNode} router | ${r.outOfConsulMs} | ${
    r.outOfHaproxyMs ?? "n/a"
  } | ${r.replacedMs} | ${r.failures} of ${r.calls} | ${r.sessionsLost} | ${r.p99Ms ?? "-"} |`
);
const markdown = [
  `# Node loss on a 3-node Swarm (${started.toISOString()})`,
  "",
  `\`deno task bench cluster --rates ${rates.join(",")}\`: \`cluster cut ${NODE}\` under MCP load`,
  "through HAProxy on this node; times from the cut, in ms.",
  "",
  "| calls/s | on the cut node | (a) out of Consul's passing set | (b) HAProxy stops sending | (c) replacements passing | failed calls | sessions lost | p99 ms |",
  "|---|---|---|---|---|---|---|---|",
  ...rows,
  "",
].join("\n");
await Deno.writeTextFile(`${dir}cluster-latest.md`, markdown);
console.log(markdown);
