/**
 * The MCP probe: opens sessions with the official MCP SDK clients (2025 era: `@modelcontextprotocol/sdk`
 * with `Mcp-Session-Id` sessions; 2026-07-28: `@modelcontextprotocol/client`, stateless) and
 * calls every tool of the platform through the MCP routers at a fixed rate, checks every answer,
 * and prints one JSON summary on stdout. Bounded by `--duration` and by a call count; SIGTERM
 * ends it early, with a summary.
 *
 *   deno run … ops/probe/mcp_main.ts --url http://127.0.0.1:8080/mcp --rate 50 --duration 20
 *   deno run … ops/probe/mcp_main.ts --consul http://consul:8500 --rate 50 --duration 20
 *
 * `--token-file` names the file with the bearer token the routers want (`deploy` keeps it in
 * `.platform/secrets/mcp-token`); without it the probe sends no credentials.
 *
 * With `--url`, every request goes there (HAProxy). With `--consul`, the probe follows the passing
 * `mcp-router` instances (the failing ones when none passes) and sends each HTTP request to the
 * next one, so every session hops from router to router: it goes on only because any replica
 * accepts any session. A request that never
 * reached a router (connection refused) is sent to another one, as HAProxy's `retry-on
 * conn-failure` does; the summary counts those as `retries`.
 */
import { parseArgs } from "node:util";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import {
  consulClientFromSettings,
  parseConsulSettings,
} from "../../services/runtime/consul/settings.ts";
import { ConsulWatch } from "../../services/runtime/consul/watch.ts";
import { splitHealthEntries } from "../../services/runtime/discovery.ts";
import { summarizeCalls } from "../plan/stats.ts";
import { PROBE_CALLS, type ProbeCall } from "./calls.ts";
import { delay } from "../../services/runtime/delay.ts";
import { bearerHeaders } from "../adapters/mcp_token.ts";
import { parseTokenLines } from "../plan/front_door_secrets.ts";

const MAX_CALLS = 100_000;
const CALL_TIMEOUT_MS = 15_000;
const CONNECT_RETRIES = 3;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string" },
    consul: { type: "string" },
    rate: { type: "string", default: "20" },
    duration: { type: "string", default: "10" },
    sessions: { type: "string", default: "4" },
    stateless: { type: "string", default: "1" },
    "token-file": { type: "string" },
  },
});
const rate = Number(values.rate);
const durationS = Number(values.duration);
const sessionCount = Number(values.sessions);
const statelessCount = Number(values.stateless);
if (
  (values.url === undefined) === (values.consul === undefined) ||
  !(rate > 0 && rate <= 1000) || !(durationS > 0 && durationS <= 3600) ||
  !(Number.isInteger(sessionCount) && sessionCount >= 0 && sessionCount <= 64) ||
  !(Number.isInteger(statelessCount) && statelessCount >= 0 && statelessCount <= 64) ||
  sessionCount + statelessCount === 0
) {
  console.error(
    "error: usage: mcp_main.ts (--url URL | --consul URL) --rate R (1..1000) --duration S " +
      "(1..3600) [--sessions N (0..64)] [--stateless N (0..64)] [--token-file FILE]",
  );
  Deno.exit(2);
}

let authorization: Record<string, string> = {};
if (values["token-file"] !== undefined) {
  const file = values["token-file"];
  try {
    authorization = bearerHeaders(parseTokenLines(await Deno.readTextFile(file), file)[0]);
  } catch (error) {
    console.error(`error: Cannot read the MCP token from "${file}": ${(error as Error).message}`);
    Deno.exit(2);
  }
}

/**
 * Tool mix per client round, every tool within ten rounds: mostly echo, some weather, a few
 * itineraries (they fan out to every weather instance).
 */
function callFor(round: number): ProbeCall {
  if (round % 10 === 9) return PROBE_CALLS["worker-itinerary"];
  if (round % 5 === 2) return PROBE_CALLS["tool-weather"];
  return PROBE_CALLS["agent-echo"];
}

const routers: Record<string, number> = {};
let retries = 0;
let fetchImpl: typeof fetch = fetch;
let endpoint: URL;
let watch: ConsulWatch<{ id: string; url: string }[]> | undefined;

if (values.consul) {
  const consulUrl = values.consul.replace(/\/+$/, "");
  // Passing routers; when none passes (every check late at once on a busy machine), the failing
  // ones, as the platform's discovery client and HAProxy do: they may well still answer.
  const consul = await consulClientFromSettings(
    parseConsulSettings({ ...Deno.env.toObject(), CONSUL_HTTP_ADDR: consulUrl }, {
      defaultAddress: consulUrl,
    }).settings,
  );
  watch = new ConsulWatch("/v1/health/service/mcp-router", {
    consul,
    parse: (body: unknown) => {
      const view = splitHealthEntries(body, "mcp-router");
      return (view.passing.length > 0 ? view.passing : view.failing).map((entry) => ({
        id: entry.id,
        url: `http://${entry.address}:${entry.port}`,
      }));
    },
  });
  watch.start();
  try {
    const first = await watch.ready(15_000);
    if (first.length === 0) throw new Error("no mcp-router instance");
  } catch (error) {
    console.error(`error: Cannot find MCP routers in Consul at "${consulUrl}": ${error}`);
    Deno.exit(1);
  }
  endpoint = new URL("http://mcp-router/mcp");
  let next = 0;
  fetchImpl = async (input, init) => {
    const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
    let lastError: unknown;
    for (let attempt = 0; attempt <= CONNECT_RETRIES; attempt++) {
      const live = watch!.value ?? [];
      if (live.length === 0) {
        lastError = new Error("no mcp-router instance in Consul");
        await delay(200);
        continue;
      }
      const router = live[next++ % live.length];
      try {
        const response = await fetch(`${router.url}${path}`, init);
        routers[router.id] = (routers[router.id] ?? 0) + 1;
        return response;
      } catch (error) {
        // Only a connection that was never made is safe to send elsewhere.
        if (!/connect|refused/i.test(String(error)) || init?.signal?.aborted) throw error;
        lastError = error;
        retries++;
      }
    }
    throw lastError;
  };
} else {
  endpoint = new URL(values.url!);
}

interface ProbeClient {
  era: "2025" | "2026";
  callTool(name: string, args: Record<string, unknown>): Promise<unknown>;
  sessionId(): string | undefined;
  close(): Promise<void>;
}

const streamErrors: Record<string, number> = {};
function streamError(error: Error): void {
  const message = error.message.slice(0, 200);
  streamErrors[message] = (streamErrors[message] ?? 0) + 1;
}

async function open2025(index: number): Promise<ProbeClient> {
  const client = new ClientV1({ name: `mcp-probe-${index}`, version: "1.0.0" });
  const transport = new TransportV1(endpoint, {
    fetch: fetchImpl,
    requestInit: { headers: authorization },
  });
  await client.connect(transport);
  transport.onerror = streamError;
  return {
    era: "2025",
    callTool: (name, args) =>
      client.callTool({ name, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS }),
    sessionId: () => transport.sessionId,
    close: () => client.close(),
  };
}

async function open2026(index: number): Promise<ProbeClient> {
  const client = new ClientV2({ name: `mcp-probe-v2-${index}`, version: "1.0.0" }, {
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  const transport = new TransportV2(endpoint, {
    fetch: fetchImpl,
    requestInit: { headers: authorization },
  });
  await client.connect(transport);
  return {
    era: "2026",
    callTool: (name, args) =>
      client.callTool({ name, arguments: args }, { timeout: CALL_TIMEOUT_MS }),
    sessionId: () => undefined,
    close: () => client.close(),
  };
}

let clients: ProbeClient[];
try {
  clients = await Promise.all([
    ...Array.from({ length: sessionCount }, (_, index) => open2025(index)),
    ...Array.from({ length: statelessCount }, (_, index) => open2026(index)),
  ]);
} catch (error) {
  console.error(`error: Cannot open MCP sessions at "${endpoint}": ${error}`);
  Deno.exit(1);
}
const openedSessions = clients.map((client) => client.sessionId());

// The ops tool and the tests wait for this line before disturbing the routers.
console.error(
  `probe: calling through ${values.url ?? `${watch!.value!.length} router(s)`} with ` +
    `${sessionCount} session(s) and ${statelessCount} stateless client(s)`,
);

const latencies: number[] = [];
const errors: Record<string, number> = {};
const tools: Record<string, number> = {};
const lostSessions = new Set<number>();
let failures = 0;
const total = Math.min(MAX_CALLS, Math.ceil(rate * durationS));
const started = performance.now();
const pending: Promise<void>[] = [];

async function one(n: number): Promise<void> {
  const index = n % clients.length;
  const client = clients[index];
  // Every client gets every tool: the mix follows the client's own call count.
  const call = callFor(Math.floor(n / clients.length));
  const begin = performance.now();
  try {
    const result = await client.callTool(call.tool, call.args(n)) as {
      isError?: boolean;
      structuredContent?: Record<string, unknown>;
      content?: { text?: string }[];
    };
    if (result.isError) throw new Error(`tool error: ${result.content?.[0]?.text ?? "?"}`);
    const problem = call.verify(n, result.structuredContent ?? {});
    if (problem) throw new Error(problem);
    latencies.push(performance.now() - begin);
    tools[call.tool] = (tools[call.tool] ?? 0) + 1;
  } catch (error) {
    failures++;
    const message = error instanceof Error ? error.message : String(error);
    if (client.era === "2025" && /404|session/i.test(message)) lostSessions.add(index);
    const key = `${client.era} ${call.tool}: ${message.slice(0, 300)}`;
    errors[key] = (errors[key] ?? 0) + 1;
  }
}

// SIGTERM or SIGINT ends the run early (the tests stop it once their operations are done): no
// new calls, the ones in flight finish, the summary is printed.
let stopped = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, () => stopped = true);
}

// Open loop: call n starts at n / rate seconds whatever the answers, so slow answers show as latency.
for (let n = 0; n < total && !stopped; n++) {
  const due = started + (n * 1000) / rate;
  const wait = due - performance.now();
  await delay(wait);
  pending.push(one(n));
}
await Promise.all(pending);
// A session that still has the ID it began with went on across every router it met.
clients.forEach((client, index) => {
  if (client.era === "2025" && client.sessionId() !== openedSessions[index]) {
    lostSessions.add(index);
  }
});
await Promise.all(clients.map((client) => client.close().catch(() => {})));
await watch?.close();

const summary = {
  service: "mcp-router",
  target: values.url ?? "consul",
  rate,
  durationS: Math.round((performance.now() - started) / 10) / 100,
  ...summarizeCalls(latencies, failures),
  tools,
  sessions: { opened: sessionCount, lost: lostSessions.size, stateless: statelessCount },
  routers,
  retries,
  streamErrors,
  errors,
};
console.log(JSON.stringify(summary));
Deno.exit(failures === 0 && lostSessions.size === 0 ? 0 : 1);
