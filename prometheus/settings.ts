/** The Prometheus container's settings, parsed once from its environment into a frozen object. */
import { parseDurationSeconds } from "../services/runtime/config.ts";
import { LOG_LEVELS, type LogLevel } from "../services/runtime/logger.ts";
import type { LbTargets } from "./config.ts";
import { ConfigurationError } from "../services/runtime/platform_error.ts";

/** Settings of `prometheus/main.ts`. */
export interface PrometheusSettings {
  readonly consulUrl: string;
  /** Prometheus's web port (UI and API). */
  readonly port: number;
  readonly bindAddress: string;
  /** Port of the Consul discovery endpoint, on loopback. */
  readonly sdPort: number;
  readonly dataDir: string;
  /** Where the rendered config and the stats password go. */
  readonly runDir: string;
  /** `--storage.tsdb.retention.time`, e.g. `6h`. */
  readonly retentionTime: string;
  /** `--storage.tsdb.retention.size`, e.g. `512MB`. */
  readonly retentionSize: string;
  readonly scrapeIntervalSeconds: number;
  readonly lb: LbTargets;
  /** HAProxy's stats credentials (`user:password`), when its stats page has auth. */
  readonly lbAuth: { readonly username: string; readonly password: string } | null;
  /** The `prometheus` executable. */
  readonly binary: string;
  readonly logLevel: LogLevel;
}

/** Invalid settings: every problem is listed; the process exits with code 2. */
export class SettingsError extends ConfigurationError {
  constructor(problems: readonly string[]) {
    super(problems);
    this.name = "SettingsError";
  }
}

/** Environment variables, as `Deno.env.toObject()` gives them. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Parses the environment. `statsAuth` is the content of the file `LB_STATS_AUTH_FILE` names, read
 * by the caller (undefined: no auth).
 */
export function parsePrometheusSettings(env: Env, statsAuth?: string): PrometheusSettings {
  const problems: string[] = [];
  const text = (name: string, fallback: string) => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? fallback : value;
  };
  const port = (name: string, fallback: number) => {
    const raw = text(name, String(fallback));
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < 1 || value > 65535) {
      problems.push(`${name} must be an integer from 1 to 65535, got "${raw}"`);
      return fallback;
    }
    return value;
  };

  const consulUrl = text("CONSUL_HTTP_ADDR", "http://consul:8500").replace(/\/+$/, "");
  const withScheme = /^[a-z]+:\/\//i.test(consulUrl) ? consulUrl : `http://${consulUrl}`;
  if (!/^https?:\/\/[^\s/]+$/.test(withScheme)) {
    problems.push(`CONSUL_HTTP_ADDR must be an http(s) URL or host:port, got "${consulUrl}"`);
  }
  const webPort = port("PROMETHEUS_PORT", 9090);
  const sdPort = port("PROMETHEUS_SD_PORT", 9091);
  if (webPort === sdPort) problems.push("PROMETHEUS_PORT and PROMETHEUS_SD_PORT must differ");

  const retentionTime = text("PROMETHEUS_RETENTION_TIME", "6h");
  if (!/^\d+(ms|s|m|h|d|w|y)$/.test(retentionTime)) {
    problems.push(`PROMETHEUS_RETENTION_TIME must be a duration like "6h", got "${retentionTime}"`);
  }
  const retentionSize = text("PROMETHEUS_RETENTION_SIZE", "512MB");
  if (!/^\d+(B|KB|MB|GB|TB)$/.test(retentionSize)) {
    problems.push(
      `PROMETHEUS_RETENTION_SIZE must be a size like "512MB", got "${retentionSize}"`,
    );
  }
  const scrapeRaw = text("PROMETHEUS_SCRAPE_INTERVAL", "5s");
  const scrape = parseDurationSeconds(scrapeRaw);
  if (scrape === undefined || !Number.isInteger(scrape) || scrape < 1 || scrape > 600) {
    problems.push(
      `PROMETHEUS_SCRAPE_INTERVAL must be whole seconds from 1s to 600s, got "${scrapeRaw}"`,
    );
  }

  let lb: LbTargets;
  const targets = text("LB_TARGETS", "");
  if (targets !== "") {
    lb = { targets: targets.split(",").map((target) => target.trim()) };
  } else {
    lb = {
      dnsNames: text("LB_DNS_NAMES", "tasks.lb").split(",").map((name) => name.trim()),
      port: port("LB_STATS_PORT", 8404),
    };
  }

  let lbAuth: PrometheusSettings["lbAuth"] = null;
  if (statsAuth !== undefined) {
    const line = statsAuth.replace(/\r?\n$/, "");
    const colon = line.indexOf(":");
    if (colon < 1 || colon === line.length - 1 || /[\r\n]/.test(line)) {
      problems.push("LB_STATS_AUTH_FILE must hold one line `user:password`");
    } else {
      lbAuth = { username: line.slice(0, colon), password: line.slice(colon + 1) };
    }
  }

  const logLevel = text("LOG_LEVEL", "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  }
  if (problems.length > 0) throw new SettingsError(problems);
  return Object.freeze({
    consulUrl: withScheme,
    port: webPort,
    bindAddress: text("PROMETHEUS_BIND_ADDR", "0.0.0.0"),
    sdPort,
    dataDir: text("PROMETHEUS_DATA_DIR", "/prometheus"),
    runDir: text("PROMETHEUS_RUN_DIR", "/run/prometheus"),
    retentionTime,
    retentionSize,
    scrapeIntervalSeconds: scrape!,
    lb,
    lbAuth,
    binary: text("PROMETHEUS_BIN", "prometheus"),
    logLevel: logLevel as LogLevel,
  });
}
