/**
 * What the end-to-end tests (and `bench cluster`) share: a stack of their own on free host ports,
 * the real ops CLI run with `--json`, callers (probes) in the background, and straight reads of
 * Docker and Consul to check the ops tool against.
 */
import { managementTokenPath } from "../../ops/plan/consul_secrets.ts";
import {
  basicHeaders,
  mcpTokenFile,
  readMcpToken,
  readStatsAuth,
} from "../../ops/adapters/mcp_token.ts";
import { freePort } from "./consul_dev.ts";
import {
  type Caller,
  docker,
  type OpsRun,
  opsRun,
  startBackground,
  startProbe,
} from "./stack_ops.ts";

export { type Caller, docker, explain, type OpsRun, parseRun } from "./stack_ops.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** A stack of the tests' own, on free ports, and the tools to drive and read it. */
export interface E2eStack {
  readonly stack: string;
  readonly root: string;
  readonly env: Readonly<Record<string, string>>;
  readonly consulUrl: string;
  readonly mcpUrl: string;
  readonly statsUrl: string;
  /**
   * A request to the stack's published Consul port with the management token `deploy` keeps in
   * the checkout (Consul runs with ACLs on: without a token it answers nothing).
   */
  consulFetch(path: string, init?: RequestInit): Promise<Response>;
  /** The management token file of the stack, relative to the checkout. */
  readonly managementTokenFile: string;
  /** The MCP bearer token `deploy` keeps for the stack; undefined before the first deploy. */
  mcpToken(): Promise<string | undefined>;
  /** `Authorization` for HAProxy's stats page and `/metrics` (the credentials `deploy` keeps). */
  statsHeaders(): Promise<Record<string, string>>;
  /** Runs the real CLI with `--json`. */
  ops(...args: string[]): Promise<OpsRun>;
  /** `ops probe <service>` in the background; resolves once it calls. */
  startProbe(service: string, rate: number, seconds: number): Promise<Caller>;
  /** The MCP probe on the host, through HAProxy's published port; resolves once it calls. */
  startHostMcpProbe(rate: number, seconds: number): Promise<Caller>;
  /** Passing instance IDs of a Consul service, straight from Consul. */
  passingIds(service: string): Promise<string[]>;
  /** Every registration of a Consul service, passing or not. */
  allIds(service: string): Promise<string[]>;
  /** Registrations of a Consul service with their node (the agent's node name) and status. */
  instances(service: string): Promise<{ id: string; node: string; passing: boolean }[]>;
  /** IDs of the running tasks of a stack service. */
  runningTaskIds(service: string): Promise<string[]>;
}

/** The stack `name` (env `E2E_STACK` overrides, for a second checkout on the machine). */
export function e2eStack(name: string): E2eStack {
  const stack = Deno.env.get("E2E_STACK") ?? name;
  const consulPort = freePort();
  const mcpPort = freePort();
  const statsPort = freePort();
  const prometheusPort = freePort();
  const consulUrl = `http://127.0.0.1:${consulPort}`;
  const mcpUrl = `http://127.0.0.1:${mcpPort}/mcp`;
  const env = {
    PLATFORM_STACK: stack,
    PLATFORM_CONSUL_PORT: String(consulPort),
    PLATFORM_MCP_PORT: String(mcpPort),
    PLATFORM_STATS_PORT: String(statsPort),
    PLATFORM_PROMETHEUS_PORT: String(prometheusPort),
    PLATFORM_TIMEOUT: "300",
    // A probe is every user at once, from one address with one token: the per-client limits
    // (tested on their own in tests/haproxy_client_limits_test.ts) would refuse its calls while a
    // cut node holds some in flight, and the probe is here to measure the platform.
    PLATFORM_LB_CLIENT_MAX_RATE: "0",
    PLATFORM_LB_CLIENT_MAX_CONCURRENT: "0",
    // And per address: at 200 calls/s calls held by a cut node made the probe open over 256
    // connections (`bench cluster` saw 3,008 calls refused so).
    PLATFORM_LB_CLIENT_MAX_CONN: "0",
    PLATFORM_LB_SOURCE_MAX_RATE: "0",
    // The same at the routers (tests/router_limits_test.ts tests theirs).
    PLATFORM_ROUTER_CLIENT_MAX_RATE: "0",
    PLATFORM_ROUTER_CLIENT_MAX_CONCURRENT: "0",
  };

  const ops = (...args: string[]) => opsRun(env, args);
  const startCaller = (args: string[]) => startBackground(env, args);

  const managementTokenFile = `${ROOT}${managementTokenPath(stack)}`;

  async function consulFetch(path: string, init: RequestInit = {}): Promise<Response> {
    let token: string | undefined;
    try {
      token = (await Deno.readTextFile(managementTokenFile)).trim();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const headers = new Headers(init.headers);
    if (token) headers.set("X-Consul-Token", token);
    return await fetch(`${consulUrl}${path}`, { ...init, headers });
  }

  // Stale reads, as the platform's own watches make them: any server answers from its copy, also
  // while a lost leader is being replaced.
  async function health(service: string, query = "") {
    const separator = query ? "&" : "?";
    const response = await consulFetch(`/v1/health/service/${service}${query}${separator}stale`);
    if (!response.ok) {
      throw new Error(
        `Consul answered ${response.status}: ${(await response.text()).slice(0, 200)}`,
      );
    }
    return await response.json() as {
      Service: { ID: string };
      Node: { Node: string };
      Checks: { Status: string }[];
    }[];
  }

  return {
    stack,
    root: ROOT,
    env,
    consulUrl,
    mcpUrl,
    statsUrl: `http://127.0.0.1:${statsPort}/stats`,
    consulFetch,
    managementTokenFile,
    ops,
    startProbe: (service, rate, seconds) => startProbe(env, service, rate, seconds),
    mcpToken: () => readMcpToken(ROOT, { env }),
    statsHeaders: async () => basicHeaders(await readStatsAuth(ROOT, { env })),
    startHostMcpProbe: async (rate, seconds) =>
      await startCaller([
        `${ROOT}ops/probe/mcp_main.ts`,
        "--url",
        mcpUrl,
        "--rate",
        String(rate),
        "--duration",
        String(seconds),
        // The routers want the token deploy keeps (none with --no-auth).
        ...(await readMcpToken(ROOT, { env }) === undefined
          ? []
          : ["--token-file", mcpTokenFile(ROOT, { env })]),
      ]),
    passingIds: async (service) =>
      (await health(service, "?passing")).map((entry) => entry.Service.ID).sort(),
    allIds: async (service) => (await health(service)).map((entry) => entry.Service.ID).sort(),
    instances: async (service) =>
      (await health(service)).map((entry) => ({
        id: entry.Service.ID,
        node: entry.Node.Node,
        passing: entry.Checks.every((check) => check.Status === "passing"),
      })),
    async runningTaskIds(service) {
      const text = await docker(
        "service",
        "ps",
        "--no-trunc",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.ID}} {{.CurrentState}}",
        `${stack}_${service}`,
      );
      return text.trim().split("\n").filter((line) => /\bRunning\b/.test(line))
        .map((line) => line.split(" ")[0]).sort();
    },
  };
}

/** The status entry of one service in a `status --json` run. */
// deno-lint-ignore no-explicit-any
export function statusOf(run: OpsRun, service: string): any {
  // deno-lint-ignore no-explicit-any
  return run.json.services.find((entry: any) => entry.service === service);
}
