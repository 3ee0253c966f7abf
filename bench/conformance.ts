/**
 * `deno task bench conformance`: what the MCP surface beyond plain tool calls costs in the router.
 *
 * 1. The added latency of a sampling round trip: the conformance server's `test_sampling` asks the
 *    client's model once per call. Measured at concurrency 1, in alternating rounds:
 *    - `grpc-direct`: InvokeSession straight to the service, the answer given by this process;
 *    - `mcp-2025`: the official SDK 1.32 client through the router (the request goes out on the
 *      call's SSE stream, the answer comes back as a POST, the router relays it to the backend);
 *    - `mcp-2025-plain`: `test_simple_text` through the router, a call without sampling, for scale.
 *    The added latency is the median p50 of `mcp-2025` minus that of `grpc-direct`.
 * 2. The memory of 1,000 open resource subscriptions. Headline: the V8 heap after a full GC of a
 *    process holding the router's own `ResourceSubscriptions` and `BackendRpc` (the router's code,
 *    not a model of it) before and after 1,000 subscriptions to distinct URIs (1,000 backend
 *    watches) and 1,000 sessions on one URI (one watch); RSS includes garbage nobody collected
 *    yet, so it is reported beside, from the real router process (`/proc/<pid>/status`) under
 *    10 sessions x 100 distinct URIs.
 *
 * Consul, the conformance server and the router are processes of their own; the load generator is
 * this process. Writes `bench/results/conformance-<time>.json` and `conformance-latest.md`.
 *
 *   deno task bench conformance [--rounds 3] [--calls 300]
 */
import { numberFlag } from "./args.ts";
import * as grpc from "@grpc/grpc-js";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import {
  CapabilityClientConstructor,
  type InvokeEvent,
  type SessionMessage,
} from "../proto/mod.ts";
import { startConsulDev } from "../tests/helpers/consul_dev.ts";
import { startService } from "../tests/helpers/service_process.ts";
import { eventually } from "../tests/helpers/poll.ts";
import { LIFTED_CLIENT_LIMITS, sessionKeyText, startRouter } from "../tests/router_harness.ts";
import { BackendRpc } from "../services/mcp-router/backend_rpc.ts";
import { ResourceSubscriptions } from "../services/mcp-router/resource_subscriptions.ts";
import { SILENT_LOGGER } from "../services/runtime/logger.ts";
import { delay } from "../services/runtime/delay.ts";

/** `--heap <address>`: the heap measurement, run in a process of its own with `--expose-gc`. */
if (Deno.args[0] === "--heap") {
  const [hostname, port] = Deno.args[1].split(":");
  const endpoint = {
    id: "conf",
    address: hostname,
    port: Number(port),
    weight: 1,
    tags: [],
    meta: {},
  };
  const rpc = new BackendRpc({
    discovery: () => ({ endpoints: () => [endpoint] }),
    deadlineMs: 10_000,
  });
  const subscriptions = new ResourceSubscriptions({
    rpc,
    resolve: () => "tool-conformance",
    onUpdated: () => {},
    logger: SILENT_LOGGER,
    maxPerSession: 1000,
  });
  const gc = (globalThis as unknown as { gc: () => void }).gc;
  const heap = () => {
    for (let i = 0; i < 3; i++) gc();
    return Deno.memoryUsage().heapUsed;
  };
  const settle = () => delay(1500);
  // One watch first, so the client, its channel and its HTTP/2 session are counted as the base.
  subscriptions.subscribe("warm", "test://template/warm/data");
  await settle();
  const base = heap();
  for (let i = 0; i < 1000; i++) subscriptions.subscribe("s", `test://template/${i}/data`);
  await settle();
  const distinct = heap() - base;
  for (let i = 0; i < 1000; i++) subscriptions.unsubscribe("s", `test://template/${i}/data`);
  await settle();
  const afterClose = heap() - base;
  for (let i = 0; i < 1000; i++) subscriptions.subscribe(`session-${i}`, "test://watched-resource");
  await settle();
  const oneUri = heap() - base;
  subscriptions.close();
  rpc.close();
  console.log(JSON.stringify({ distinct, afterClose, oneUri, watches: subscriptions.openWatches }));
  Deno.exit(0);
}

const PATHS = ["grpc-direct", "mcp-2025", "mcp-2025-plain"] as const;
type PathName = typeof PATHS[number];
const MAX_SECONDS_PER_PATH = 60;

const rounds = numberFlag("rounds", 3);
const calls = numberFlag("calls", 300);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 0.5);
}

function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
}

/** Runs `call` `calls` times in a row (bounded in time); every answer is checked by `call`. */
async function measure(
  call: () => Promise<void>,
): Promise<{ p50: number; p99: number; n: number }> {
  const latencies: number[] = [];
  const deadline = performance.now() + MAX_SECONDS_PER_PATH * 1000;
  for (let i = 0; i < calls && performance.now() < deadline; i++) {
    const started = performance.now();
    await call();
    latencies.push(performance.now() - started);
  }
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), n: latencies.length };
}

const consul = await startConsulDev();
const backend = startService("conformance-server", {
  consulUrl: consul.url,
  id: "conf-bench",
  env: { CONFORMANCE_WATCH_INTERVAL_MS: "0", LOG_LEVEL: "warn" },
});
const router = await startRouter(consul.url, "router-bench", {
  ...LIFTED_CLIENT_LIMITS,
  ROUTER_SESSION_KEY: sessionKeyText(),
  LOG_LEVEL: "warn",
  ROUTER_MAX_CONNECTIONS: "4096",
});
const grpcClient = new CapabilityClientConstructor(
  backend.address,
  grpc.credentials.createInsecure(),
);
const clients: ClientV1[] = [];

const SAMPLING_ANSWER = {
  role: "assistant",
  content: { type: "text", text: "bench answer" },
  model: "bench-model",
  stopReason: "endTurn",
};

async function mcpClient(): Promise<ClientV1> {
  const client = new ClientV1({ name: "bench", version: "1.0.0" }, {
    capabilities: { sampling: {} },
  });
  client.setRequestHandler(CreateMessageRequestSchema, () => SAMPLING_ANSWER);
  await client.connect(new TransportV1(router.url));
  clients.push(client);
  return client;
}

/** One InvokeSession call of `test_sampling`, answering its request here. */
function directSampling(): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = grpcClient.invokeSession(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    let text = "";
    call.on("data", (event: InvokeEvent) => {
      if (event.request) {
        const answer: SessionMessage = {
          answer: {
            id: event.request.id,
            resultJson: JSON.stringify(SAMPLING_ANSWER),
            errorCode: 0,
            errorMessage: "",
          },
        };
        call.write(answer);
      } else if (event.result) text = event.result.content?.[0]?.text?.text ?? "";
    });
    call.on("error", reject);
    call.on("end", () => {
      call.end();
      if (text === "LLM response: bench answer") resolve();
      else reject(new Error(`Unexpected answer "${text}"`));
    });
    call.write({
      call: { tool: "test_sampling", argumentsJson: '{"prompt":"bench"}', requestId: "bench" },
    });
  });
}

const results: Record<string, unknown> = {};
try {
  await eventually("fixtures served", async () => {
    const client = await mcpClient();
    return (await client.listTools()).tools.length;
  }, (n) => n > 0);
  const client = await mcpClient();
  const callers: Record<PathName, () => Promise<void>> = {
    "grpc-direct": directSampling,
    "mcp-2025": async () => {
      const result = await client.callTool({ name: "test_sampling", arguments: { prompt: "b" } });
      const text = (result.content as { text: string }[])[0].text;
      if (text !== "LLM response: bench answer") throw new Error(`Unexpected answer "${text}"`);
    },
    "mcp-2025-plain": async () => {
      const result = await client.callTool({ name: "test_simple_text", arguments: {} });
      if ((result.content as unknown[]).length !== 1) throw new Error("Unexpected answer");
    },
  };
  for (const path of PATHS) for (let i = 0; i < 50; i++) await callers[path]();
  const samples: { round: number; path: PathName; p50: number; p99: number; n: number }[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = PATHS.map((_, i) => PATHS[(i + round) % PATHS.length]);
    for (const path of order) {
      const sample = { round, path, ...await measure(callers[path]) };
      samples.push(sample);
      console.error(
        `round ${round} ${path}: p50 ${sample.p50.toFixed(3)} ms, p99 ${sample.p99.toFixed(3)} ms`,
      );
    }
  }
  const p50 = Object.fromEntries(
    PATHS.map((path) => [path, median(samples.filter((s) => s.path === path).map((s) => s.p50))]),
  ) as Record<PathName, number>;
  results.sampling = {
    calls,
    rounds,
    samples,
    medianP50Ms: p50,
    addedMs: p50["mcp-2025"] - p50["grpc-direct"],
    samplingOverPlainMs: p50["mcp-2025"] - p50["mcp-2025-plain"],
  };

  // Memory: settle, then subscribe.
  const metric = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${router.opsPort}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
  };
  await delay(2000);
  const base = { router: rssKiB(router.pid), backend: rssKiB(backend.pid) };
  const sessions = await Promise.all(Array.from({ length: 10 }, () => mcpClient()));
  for (const [s, session] of sessions.entries()) {
    await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) => session.subscribeResource({ uri: `test://template/${s * 100 + i}/data` }),
      ),
    );
  }
  await eventually(
    "1,000 watches open",
    () => metric("mcp_router_resource_watches"),
    (n) => n === 1000,
  );
  await delay(2000);
  const distinct = { router: rssKiB(router.pid), backend: rssKiB(backend.pid) };
  for (const [s, session] of sessions.entries()) {
    await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) => session.unsubscribeResource({ uri: `test://template/${s * 100 + i}/data` }),
      ),
    );
  }
  await eventually("watches closed", () => metric("mcp_router_resource_watches"), (n) => n === 0);
  const many: ClientV1[] = [];
  for (let i = 0; i < 1000; i += 50) {
    many.push(...await Promise.all(Array.from({ length: 50 }, () => mcpClient())));
  }
  await Promise.all(many.map((c) => c.subscribeResource({ uri: "test://watched-resource" })));
  await eventually(
    "1,000 subscriptions",
    () => metric("mcp_router_resource_subscriptions"),
    (n) => n === 1000,
  );
  await delay(2000);
  const shared = {
    router: rssKiB(router.pid),
    backend: rssKiB(backend.pid),
    watches: await metric("mcp_router_resource_watches"),
  };
  const heapRun = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      "--heap",
      backend.address,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const heapBytes = JSON.parse(new TextDecoder().decode(heapRun.stdout)) as {
    distinct: number;
    afterClose: number;
    oneUri: number;
  };
  results.subscriptions = {
    heapBytes,
    heapBytesPerDistinctSubscription: Math.round(heapBytes.distinct / 1000),
    heapBytesPerSessionOnOneUri: Math.round(heapBytes.oneUri / 1000),
    rssKiB: { before: base, distinctUris: distinct, oneUri: shared },
    routerKiBPer1000Distinct: distinct.router - base.router,
    backendKiBPer1000Distinct: distinct.backend - base.backend,
    routerKiBPer1000OnOneUri: shared.router - base.router,
  };
} finally {
  await Promise.allSettled(clients.map((client) => client.close()));
  grpcClient.close();
  await router.stop();
  await backend.stop();
  await consul.stop();
}

const commit = new TextDecoder().decode(
  (await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"], stdout: "piped" })
    .output()).stdout,
).trim();
const stamp = new Date().toISOString().slice(0, 19).replaceAll(":", "-");
const report = { commit, at: new Date().toISOString(), ...results };
const dir = new URL("./results/", import.meta.url).pathname;
await Deno.writeTextFile(`${dir}conformance-${stamp}.json`, JSON.stringify(report, null, 2) + "\n");
const sampling = results.sampling as {
  medianP50Ms: Record<PathName, number>;
  addedMs: number;
  samplingOverPlainMs: number;
};
const memory = results.subscriptions as {
  heapBytes: { distinct: number; afterClose: number; oneUri: number };
  heapBytesPerDistinctSubscription: number;
  heapBytesPerSessionOnOneUri: number;
  routerKiBPer1000Distinct: number;
  backendKiBPer1000Distinct: number;
  routerKiBPer1000OnOneUri: number;
};
const markdown = [
  `# bench conformance (${report.at}, commit ${commit}, ${rounds} rounds x ${calls} calls, C=1)`,
  "",
  "| path | median p50 (ms) |",
  "| --- | --- |",
  ...PATHS.map((path) => `| ${path} | ${sampling.medianP50Ms[path].toFixed(3)} |`),
  "",
  `Sampling round trip added by the router (mcp-2025 - grpc-direct): **${
    sampling.addedMs.toFixed(3)
  } ms**; sampling call over a plain call through the router: ${
    sampling.samplingOverPlainMs.toFixed(3)
  } ms.`,
  "",
  "| 1,000 subscriptions | router heap after GC | per subscription |",
  "| --- | --- | --- |",
  `| 1,000 distinct URIs (1,000 backend watches) | ${
    (memory.heapBytes.distinct / 1024).toFixed(0)
  } KiB | ${memory.heapBytesPerDistinctSubscription} B |`,
  `| 1,000 sessions on one URI (1 backend watch) | ${
    (memory.heapBytes.oneUri / 1024).toFixed(0)
  } KiB | ${memory.heapBytesPerSessionOnOneUri} B |`,
  `| after unsubscribing the 1,000 distinct URIs | ${
    (memory.heapBytes.afterClose / 1024).toFixed(0)
  } KiB | |`,
  "",
  `RSS of the real router process, 10 sessions x 100 distinct URIs: +${memory.routerKiBPer1000Distinct} KiB (backend +${memory.backendKiBPer1000Distinct} KiB); 1,000 sessions on one URI: +${memory.routerKiBPer1000OnOneUri} KiB over the start. RSS counts garbage not yet collected, from serving 1,000 initialize and subscribe requests.`,
  "",
].join("\n");
await Deno.writeTextFile(`${dir}conformance-latest.md`, markdown);
console.log(markdown);
