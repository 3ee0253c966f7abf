/** The autoscaler's settings, parsed once from its environment into a frozen object. */
import { parseDurationSeconds } from "../runtime/config.ts";
import { LOG_LEVELS, type LogLevel } from "../runtime/logger.ts";
import { ConfigurationError } from "../runtime/platform_error.ts";

/** Settings of `services/autoscaler/main.ts`. */
export interface AutoscalerSettings {
  readonly prometheusUrl: string;
  readonly consulUrl: string;
  readonly dockerSocket: string;
  /** Only services of this stack; empty: every service with autoscaling labels. */
  readonly stack: string;
  readonly intervalSeconds: number;
  /** The window of `rate()` / `avg_over_time()` in the metric queries. */
  readonly metricWindowSeconds: number;
  /** Port of `/metrics`, `/status` and `/healthz`. */
  readonly port: number;
  readonly advertiseAddr: string;
  readonly serviceId: string;
  /** Consul KV key the status document is written to, for `./platform autoscale status`. */
  readonly statusKey: string;
  readonly dryRun: boolean;
  readonly logLevel: LogLevel;
}

/** Invalid settings: every problem is listed; the process exits with code 2. */
export class SettingsError extends ConfigurationError {
  constructor(problems: readonly string[]) {
    super(problems);
    this.name = "SettingsError";
  }
}

/** Default Consul KV key of the status document. */
export const DEFAULT_STATUS_KEY = "platform/autoscaler/status";

/** Parses the environment; `hostname` and `addresses` default the instance ID and address. */
export function parseAutoscalerSettings(
  env: Readonly<Record<string, string | undefined>>,
  facts: { hostname: string; addresses: readonly string[] },
): AutoscalerSettings {
  const problems: string[] = [];
  const text = (name: string, fallback: string) => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? fallback : value;
  };
  const url = (name: string, fallback: string) => {
    const raw = text(name, fallback).replace(/\/+$/, "");
    const value = /^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`;
    if (!/^https?:\/\/[^\s/]+$/.test(value)) {
      problems.push(`${name} must be an http(s) URL or host:port, got "${raw}"`);
    }
    return value;
  };
  const seconds = (name: string, fallback: number, min: number, max: number) => {
    const raw = text(name, `${fallback}s`);
    const value = parseDurationSeconds(raw);
    if (value === undefined || value < min || value > max) {
      problems.push(`${name} must be a duration from ${min}s to ${max}s, got "${raw}"`);
      return fallback;
    }
    return value;
  };

  const portText = text("METRICS_PORT", "9464");
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    problems.push(`METRICS_PORT must be an integer from 0 to 65535, got "${portText}"`);
  }
  const stack = text("AUTOSCALE_STACK", "");
  if (stack !== "" && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(stack)) {
    problems.push(`AUTOSCALE_STACK must be a stack name, got "${stack}"`);
  }
  const serviceId = text("SERVICE_ID", `autoscaler-${facts.hostname}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(serviceId)) {
    problems.push(`SERVICE_ID may hold letters, digits, ".", "_" and "-" only, got "${serviceId}"`);
  }
  const statusKey = text("STATUS_KV_KEY", DEFAULT_STATUS_KEY);
  if (!/^[A-Za-z0-9][A-Za-z0-9_./-]*$/.test(statusKey)) {
    problems.push(`STATUS_KV_KEY must be a Consul key, got "${statusKey}"`);
  }
  const dryRunText = text("DRY_RUN", "false").toLowerCase();
  if (!["true", "false"].includes(dryRunText)) {
    problems.push(`DRY_RUN must be "true" or "false", got "${dryRunText}"`);
  }
  const logLevel = text("LOG_LEVEL", "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  }
  const settings: AutoscalerSettings = {
    prometheusUrl: url("PROMETHEUS_URL", "http://prometheus:9090"),
    consulUrl: url("CONSUL_HTTP_ADDR", "http://consul:8500"),
    dockerSocket: text("DOCKER_SOCKET", "/var/run/docker.sock"),
    stack,
    intervalSeconds: seconds("EVALUATION_INTERVAL", 15, 1, 600),
    metricWindowSeconds: seconds("METRIC_WINDOW", 30, 2, 3600),
    port,
    advertiseAddr: text("ADVERTISE_ADDR", facts.addresses[0] ?? "127.0.0.1"),
    serviceId,
    statusKey,
    dryRun: dryRunText === "true",
    logLevel: logLevel as LogLevel,
  };
  if (problems.length > 0) throw new SettingsError(problems);
  return Object.freeze(settings);
}
