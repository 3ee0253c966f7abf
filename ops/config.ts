/** The ops tool's configuration: one pure function of the environment and the global flags. */
import { UsageError } from "./errors.ts";

/** The `lb` service's limits `deploy` takes from `PLATFORM_<name>` (a benchmark turns them off). */
export const LB_LIMIT_SETTINGS = [
  "LB_CLIENT_MAX_CONN",
  "LB_CLIENT_MAX_RATE",
  "LB_CLIENT_RATE_BURST",
  "LB_CLIENT_MAX_CONCURRENT",
  "LB_SOURCE_MAX_RATE",
] as const;

/** The routers' per-client and in-flight limits `deploy` takes from `PLATFORM_<name>` (0 lifts). */
export const ROUTER_LIMIT_SETTINGS = [
  "ROUTER_CLIENT_MAX_RATE",
  "ROUTER_CLIENT_BURST",
  "ROUTER_CLIENT_MAX_CONCURRENT",
  "ROUTER_MAX_IN_FLIGHT",
] as const;

/** Environment variables, as `Deno.env.toObject()` gives them. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Global flags of the command line, as commander parsed them. */
export interface GlobalFlags {
  json?: boolean;
  stack?: string;
  timeout?: string;
  consulPort?: string;
  mcpPort?: string;
  statsPort?: string;
  prometheusPort?: string;
}

/** Facts about where the tool runs, given by `ops/main.ts`. */
export interface Facts {
  /** Repository root, absolute. */
  root: string;
  /** The Deno executable running the tool. */
  denoPath: string;
}

/** The ops tool's configuration. */
export interface OpsConfig {
  readonly root: string;
  readonly denoPath: string;
  /** Swarm stack name. */
  readonly stack: string;
  /** Host port where the stack publishes Consul's HTTP API and UI. */
  readonly consulPort: number;
  /** Consul's URL from this machine. */
  readonly consulUrl: string;
  /** Host port where HAProxy publishes the MCP endpoint. */
  readonly mcpPort: number;
  /** Host port where HAProxy publishes its stats page and Prometheus metrics. */
  readonly statsPort: number;
  /** Host port where the stack publishes Prometheus's UI and API. */
  readonly prometheusPort: number;
  /** Prometheus's URL from this machine. */
  readonly prometheusUrl: string;
  /**
   * Front door limits for `deploy`, by the `lb` or router setting: `PLATFORM_<setting>` for each of
   * {@linkcode LB_LIMIT_SETTINGS} and {@linkcode ROUTER_LIMIT_SETTINGS} (0 lifts one); one not
   * given keeps the stack file's default.
   */
  readonly lbLimits: Readonly<Record<string, string>>;
  /**
   * A file holding `user:password` for HAProxy's stats; undefined: `deploy` makes credentials and
   * keeps them in `.platform/secrets/lb-stats-auth`.
   */
  readonly statsAuthFile: string | undefined;
  /**
   * A file of MCP bearer tokens (one per line) the routers accept; undefined: `deploy` makes one
   * token and keeps it in `.platform/secrets/mcp-token`.
   */
  readonly mcpTokensFile: string | undefined;
  /** How long commands wait for Swarm and Consul to agree, in seconds. */
  readonly timeoutSeconds: number;
  readonly json: boolean;
  /** Where build contexts and rendered stacks go. */
  readonly buildDir: string;
  /** Prefix of every image the tool builds. */
  readonly imagePrefix: string;
}

/** Default stack name. */
export const DEFAULT_STACK = "agent-platform";

/** Precedence: flags > environment > defaults. Throws a usage error listing every problem. */
export function parseConfig(env: Env, flags: GlobalFlags, facts: Facts): OpsConfig {
  const problems: string[] = [];

  const stack = flags.stack ?? env.PLATFORM_STACK ?? DEFAULT_STACK;
  if (!/^[a-z0-9][a-z0-9_-]{0,39}$/.test(stack)) {
    problems.push(`stack name must be lower-case letters, digits, "-" or "_", got "${stack}"`);
  }

  function integer(
    name: string,
    raw: string | undefined,
    fallback: number,
    min: number,
    max: number,
  ) {
    if (raw === undefined || raw.trim() === "") return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  }

  /** An optional front door limit: undefined when unset. */
  function limit(name: string, min = 0): number | undefined {
    const raw = env[name];
    if (raw === undefined || raw.trim() === "") return undefined;
    return integer(name, raw, 0, min, 1_000_000);
  }

  const consulPort = integer(
    "Consul port",
    flags.consulPort ?? env.PLATFORM_CONSUL_PORT,
    8500,
    1,
    65535,
  );
  const mcpPort = integer("MCP port", flags.mcpPort ?? env.PLATFORM_MCP_PORT, 8080, 1, 65535);
  const statsPort = integer(
    "stats port",
    flags.statsPort ?? env.PLATFORM_STATS_PORT,
    8404,
    1,
    65535,
  );
  const prometheusPort = integer(
    "Prometheus port",
    flags.prometheusPort ?? env.PLATFORM_PROMETHEUS_PORT,
    9090,
    1,
    65535,
  );
  const ports = [consulPort, mcpPort, statsPort, prometheusPort];
  if (new Set(ports).size !== ports.length) {
    problems.push(`Consul, MCP, stats and Prometheus ports must differ, got ${ports.join(", ")}`);
  }
  const timeoutSeconds = integer(
    "timeout",
    flags.timeout ?? env.PLATFORM_TIMEOUT,
    300,
    1,
    3600,
  );
  const lbLimits = Object.freeze(Object.fromEntries(
    [...LB_LIMIT_SETTINGS, ...ROUTER_LIMIT_SETTINGS].flatMap((name) => {
      // A burst is at least one request; every other limit is off at 0.
      const value = limit(`PLATFORM_${name}`, name === "LB_CLIENT_RATE_BURST" ? 1 : 0);
      return value === undefined ? [] : [[name, String(value)]];
    }),
  ));
  if (problems.length > 0) throw new UsageError(`Invalid configuration: ${problems.join("; ")}`);

  return Object.freeze({
    root: facts.root,
    denoPath: facts.denoPath,
    stack,
    consulPort,
    consulUrl: env.PLATFORM_CONSUL_URL ?? `http://127.0.0.1:${consulPort}`,
    mcpPort,
    statsPort,
    prometheusPort,
    prometheusUrl: env.PLATFORM_PROMETHEUS_URL ?? `http://127.0.0.1:${prometheusPort}`,
    lbLimits,
    statsAuthFile: env.PLATFORM_STATS_AUTH_FILE?.trim() || undefined,
    mcpTokensFile: env.PLATFORM_MCP_TOKENS_FILE?.trim() || undefined,
    timeoutSeconds,
    json: flags.json ?? false,
    buildDir: `${facts.root}/.build`,
    imagePrefix: "agent-platform",
  });
}
