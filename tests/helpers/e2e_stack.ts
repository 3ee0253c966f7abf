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

const ROOT = new URL("../..", import.meta.url).pathname;

/** One run of the ops CLI. */
export interface OpsRun {
  code: number;
  stdout: string;
  stderr: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** A caller (probe) running in the background. */
export interface Caller {
  /** Ends it early (SIGTERM): calls in flight finish and it reports. */
  stop(): void;
  /** Resolves when its stderr (progress) matches `pattern`; rejects if it ends first. */
  printed(pattern: RegExp): Promise<void>;
  result(): Promise<OpsRun>;
}

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
  };

  async function ops(...args: string[]): Promise<OpsRun> {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${ROOT}ops/main.ts`, "--json", ...args],
      cwd: ROOT,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return parseRun(output.code, output.stdout, output.stderr);
  }

  async function startCaller(args: string[]): Promise<Caller> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", ...args],
      cwd: ROOT,
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new Response(child.stdout).arrayBuffer();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let stderr = "";
    while (!/probe: calling/.test(stderr)) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += value;
    }
    const waiters: { pattern: RegExp; resolve(): void; reject(error: Error): void }[] = [];
    const settle = (ended: boolean) => {
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(stderr)) waiter.resolve();
        else if (ended) {
          waiter.reject(new Error(`The caller ended without printing ${waiter.pattern}`));
        } else continue;
        waiters.splice(waiters.indexOf(waiter), 1);
      }
    };
    const rest = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return settle(true);
        stderr += value;
        settle(false);
      }
    })();
    return {
      stop(): void {
        // A caller that already ended (it could not open its sessions) reports why in result().
        try {
          child.kill("SIGTERM");
        } catch {
          // already exited
        }
      },
      printed(pattern: RegExp): Promise<void> {
        if (pattern.test(stderr)) return Promise.resolve();
        return new Promise((resolve, reject) => waiters.push({ pattern, resolve, reject }));
      },
      async result(): Promise<OpsRun> {
        const [status, out] = await Promise.all([child.status, stdout, rest]);
        return parseRun(status.code, new Uint8Array(out), new TextEncoder().encode(stderr));
      },
    };
  }

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

  async function health(service: string, query = "") {
    const response = await consulFetch(`/v1/health/service/${service}${query}`);
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
    startProbe: (service, rate, seconds) =>
      startCaller([
        `${ROOT}ops/main.ts`,
        "--json",
        "probe",
        service,
        "--rate",
        String(rate),
        "--duration",
        String(seconds),
      ]),
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

/** Exit code and output of a run, with stdout parsed as JSON when it is JSON. */
export function parseRun(code: number, stdoutBytes: Uint8Array, stderrBytes: Uint8Array): OpsRun {
  const stdout = new TextDecoder().decode(stdoutBytes);
  const stderr = new TextDecoder().decode(stderrBytes);
  let json: unknown;
  try {
    json = stdout.trim() === "" ? undefined : JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}

/** A run's exit code and the tail of its output, for assertion messages. */
export function explain(run: OpsRun): string {
  // A probe's summary ends with its errors by kind: the part worth reading first.
  const errors = run.json?.errors
    ? `\nerrors: ${JSON.stringify(run.json.errors).slice(0, 2000)}`
    : "";
  return `exit ${run.code}${errors}\nstdout: ${run.stdout.slice(-2000)}\nstderr: ${
    run.stderr.slice(-3000)
  }`;
}

/** `docker …`; throws with stderr when it fails. */
export async function docker(...args: string[]): Promise<string> {
  const output = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`docker ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return text;
}

/** The status entry of one service in a `status --json` run. */
// deno-lint-ignore no-explicit-any
export function statusOf(run: OpsRun, service: string): any {
  // deno-lint-ignore no-explicit-any
  return run.json.services.find((entry: any) => entry.service === service);
}
