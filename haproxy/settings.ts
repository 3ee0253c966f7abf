/** The load balancer's configuration: flags over environment over defaults, checked in one place. */

import { type ConsulSettings, parseConsulSettings } from "../services/runtime/consul/settings.ts";
import { isServiceName } from "../services/runtime/consul/validate.ts";
import { type Balance, DEFAULT_LB_SETTINGS, type LbSettings } from "./model.ts";
import { PlatformError } from "../services/runtime/platform_error.ts";
import { DAY_MS, formatDuration, HOUR_MS, parseDurationMs } from "./duration.ts";

/** Flags of the `lb` commands (all optional). */
export interface LbFlags {
  consul?: string;
  template?: string;
  out?: string;
  runDir?: string;
  syncUrl?: string;
}

/** The `lb` configuration. */
export interface LbConfig {
  readonly consulUrl: string;
  /** Consul address and token (`CONSUL_HTTP_TOKEN` or `CONSUL_HTTP_TOKEN_FILE`; read-only). */
  readonly consul: ConsulSettings;
  readonly settings: LbSettings;
  readonly templatePath: string;
  readonly runDir: string;
  readonly configPath: string;
  readonly masterSocket: string;
  readonly metricsAddress: string;
  readonly metricsPort: number;
  /** Where `lb reload` asks the running `lb sync`. */
  readonly syncUrl: string;
  readonly debounceMs: number;
  readonly reloadDebounceMs: number;
  readonly drainTimeoutMs: number;
}

/** Options of {@linkcode parseLbConfig}. */
export interface ParseLbConfigOptions {
  /** The template used when neither flag nor environment names one. */
  defaultTemplate: string;
  /** Content of the file `LB_STATS_AUTH_FILE` names (`user:password`), read by the caller. */
  statsAuthText?: string | null;
}

const BALANCES: readonly Balance[] = [
  "roundrobin",
  "leastconn",
  "random",
  "source",
  "hdr(mcp-session-id)",
];

/** Parses the configuration; throws one error listing every problem. */
export function parseLbConfig(
  env: Readonly<Record<string, string | undefined>>,
  flags: LbFlags,
  options: ParseLbConfigOptions,
): LbConfig {
  const problems: string[] = [];
  function int(name: string, fallback: number, min: number, max: number): number {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  }
  function duration(name: string, fallbackMs: number, minMs: number, maxMs: number): number {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallbackMs;
    const ms = parseDurationMs(raw);
    if (ms === null || ms < minMs || ms > maxMs) {
      problems.push(
        `${name} must be a duration from ${formatDuration(minMs)} to ${
          formatDuration(maxMs)
        } like "30s" or "500ms", got "${raw}"`,
      );
      return fallbackMs;
    }
    return ms;
  }
  const balance = (env.LB_BALANCE || DEFAULT_LB_SETTINGS.balance) as Balance;
  if (!BALANCES.includes(balance)) {
    problems.push(`LB_BALANCE must be one of ${BALANCES.join(", ")}, got "${env.LB_BALANCE}"`);
  }
  let statsAuth: LbSettings["statsAuth"] = null;
  if (options.statsAuthText != null) {
    const text = options.statsAuthText.trim();
    const colon = text.indexOf(":");
    if (colon < 1 || colon === text.length - 1 || /[\r\n]/.test(text)) {
      problems.push("LB_STATS_AUTH_FILE must hold one line `user:password`");
    } else {
      statsAuth = { user: text.slice(0, colon), password: text.slice(colon + 1) };
    }
  }
  const consul = parseConsulSettings(
    { ...env, ...(flags.consul === undefined ? {} : { CONSUL_HTTP_ADDR: flags.consul }) },
    { defaultAddress: "http://127.0.0.1:8500" },
  );
  problems.push(...consul.problems);
  const consulUrl = consul.settings.address;
  const runDir = (flags.runDir ?? env.LB_RUN_DIR ?? "/run/lb").replace(/\/+$/, "");
  const metricsPort = int("LB_METRICS_PORT", 8405, 1, 65535);
  const settings: LbSettings = Object.freeze({
    bindAddress: env.LB_BIND_ADDR || DEFAULT_LB_SETTINGS.bindAddress,
    mcpPort: int("LB_MCP_PORT", DEFAULT_LB_SETTINGS.mcpPort, 1, 65535),
    statsPort: int("LB_STATS_PORT", DEFAULT_LB_SETTINGS.statsPort, 1, 65535),
    balance,
    statsAuth,
    runtimeSocket: `${runDir}/admin.sock`,
    minSlots: int("LB_MIN_SLOTS", DEFAULT_LB_SETTINGS.minSlots, 1, 1024),
    hardStopAfter: env.LB_HARD_STOP_AFTER || DEFAULT_LB_SETTINGS.hardStopAfter,
    maxReloads: int("LB_MAX_RELOADS", DEFAULT_LB_SETTINGS.maxReloads, 1, 10_000),
    routerService: env.LB_ROUTER_SERVICE || DEFAULT_LB_SETTINGS.routerService,
    clientMaxConnections: int(
      "LB_CLIENT_MAX_CONN",
      DEFAULT_LB_SETTINGS.clientMaxConnections,
      0,
      1_000_000,
    ),
    clientMaxRequestRate: int(
      "LB_CLIENT_MAX_RATE",
      DEFAULT_LB_SETTINGS.clientMaxRequestRate,
      0,
      1_000_000,
    ),
    clientRateBurst: int(
      "LB_CLIENT_RATE_BURST",
      DEFAULT_LB_SETTINGS.clientRateBurst,
      1,
      10_000_000,
    ),
    clientMaxConcurrent: int(
      "LB_CLIENT_MAX_CONCURRENT",
      DEFAULT_LB_SETTINGS.clientMaxConcurrent,
      0,
      1_000_000,
    ),
    sourceMaxRequestRate: int(
      "LB_SOURCE_MAX_RATE",
      DEFAULT_LB_SETTINGS.sourceMaxRequestRate,
      0,
      1_000_000,
    ),
    maxConnections: int("LB_MAX_CONN", DEFAULT_LB_SETTINGS.maxConnections, 1, 1_000_000),
    serverMaxConnections: int(
      "LB_SERVER_MAX_CONN",
      DEFAULT_LB_SETTINGS.serverMaxConnections,
      0,
      1_000_000,
    ),
    queueTimeoutMs: duration("LB_QUEUE_TIMEOUT", DEFAULT_LB_SETTINGS.queueTimeoutMs, 1, HOUR_MS),
    headerTimeoutMs: duration(
      "LB_HEADER_TIMEOUT",
      DEFAULT_LB_SETTINGS.headerTimeoutMs,
      1,
      HOUR_MS,
    ),
    bodyTimeoutMs: duration("LB_BODY_TIMEOUT", DEFAULT_LB_SETTINGS.bodyTimeoutMs, 1, HOUR_MS),
    clientTimeoutMs: duration(
      "LB_CLIENT_TIMEOUT",
      DEFAULT_LB_SETTINGS.clientTimeoutMs,
      1,
      DAY_MS,
    ),
    keepAliveTimeoutMs: duration(
      "LB_KEEPALIVE_TIMEOUT",
      DEFAULT_LB_SETTINGS.keepAliveTimeoutMs,
      1,
      HOUR_MS,
    ),
    // Linux counts TCP keep-alive idle time in whole seconds.
    clientKeepAliveIdleMs: duration(
      "LB_CLIENT_TCP_KEEPALIVE",
      DEFAULT_LB_SETTINGS.clientKeepAliveIdleMs,
      1_000,
      DAY_MS,
    ),
  });
  if (!isServiceName(settings.routerService)) {
    problems.push(
      `LB_ROUTER_SERVICE must be a plain service name, got "${settings.routerService}"`,
    );
  }
  if (!/^\d+(ms|s|m|h)?$/.test(settings.hardStopAfter)) {
    problems.push(
      `LB_HARD_STOP_AFTER must be a duration like "5m", got "${settings.hardStopAfter}"`,
    );
  }
  if (settings.mcpPort === settings.statsPort) {
    problems.push(`LB_MCP_PORT and LB_STATS_PORT must differ, both are ${settings.mcpPort}`);
  }
  const config: LbConfig = Object.freeze({
    consulUrl,
    consul: consul.settings,
    settings,
    templatePath: flags.template ?? env.LB_TEMPLATE ?? options.defaultTemplate,
    runDir,
    configPath: `${runDir}/haproxy.cfg`,
    masterSocket: `${runDir}/master.sock`,
    metricsAddress: env.LB_METRICS_ADDR || "127.0.0.1",
    metricsPort,
    syncUrl: (flags.syncUrl ?? env.LB_SYNC_URL ?? `http://127.0.0.1:${metricsPort}`).replace(
      /\/+$/,
      "",
    ),
    debounceMs: int("LB_DEBOUNCE_MS", 20, 0, 60_000),
    reloadDebounceMs: int("LB_RELOAD_DEBOUNCE_MS", 200, 0, 600_000),
    drainTimeoutMs: int("LB_DRAIN_TIMEOUT_MS", 300_000, 0, 86_400_000),
  });
  if (problems.length > 0) {
    throw new PlatformError(
      `Invalid load balancer configuration:\n  ${problems.join("\n  ")}`,
      { code: "INVALID_CONFIG", exitCode: 2 },
    );
  }
  return config;
}
