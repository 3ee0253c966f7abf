/** The environment every platform service reads, parsed once into a frozen, typed object. */
import { type ConsulSettings, parseConsulSettings } from "./consul/settings.ts";
import { LOG_LEVELS, type LogLevel } from "./logger.ts";
import { ConfigurationError } from "./platform_error.ts";
import { DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_DEADLINE_MS } from "./grpc_server.ts";

/** A stream limit above this is no limit for a service (each stream holds a handler). */
const MAX_STREAMS = 100_000;

/** A service's configuration. */
export interface ServiceConfig {
  /** Base URL of the Consul HTTP API. */
  readonly consulUrl: string;
  /** Consul address and token (`CONSUL_HTTP_TOKEN` or `CONSUL_HTTP_TOKEN_FILE`). */
  readonly consul: ConsulSettings;
  /** Port to listen on (0: any free port, for tests). */
  readonly port: number;
  /** Address registered in Consul. */
  readonly advertiseAddr: string;
  /** Unique instance ID, registered in Consul. */
  readonly serviceId: string;
  /** Interval of Consul's health check, in seconds. */
  readonly checkIntervalSeconds: number;
  /** Failed checks in a row before Consul marks the instance critical. */
  readonly checkFailures: number;
  /** After deregistering, how long to keep serving so balancers stop sending, in seconds. */
  readonly drainSeconds: number;
  /** After draining, how long in-flight calls may take to finish, in seconds. */
  readonly graceSeconds: number;
  readonly logLevel: LogLevel;
  /** The HAProxy frontend that exposes the service outside the Swarm; null when not exposed. */
  readonly expose: ServiceExposure | null;
  /** Port of the Prometheus `/metrics` endpoint (Consul Meta `metrics_port`); 0: any free port. */
  readonly metricsPort: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS of each gRPC connection (`GRPC_MAX_CONCURRENT_STREAMS`). */
  readonly grpcMaxConcurrentStreams: number;
  /** The longest a gRPC call may run whatever its `grpc-timeout`, in ms (`GRPC_MAX_DEADLINE`). */
  readonly grpcMaxDeadlineMs: number;
}

/** How HAProxy exposes a service: its frontend port and protocol (Consul Meta `lb_port`, `lb_mode`). */
export interface ServiceExposure {
  readonly port: number;
  /** `grpc`: HTTP/2 proxied per call; `tcp`: connections passed through. */
  readonly mode: "grpc" | "tcp";
}

/** What {@linkcode parseServiceConfig} needs besides the environment. */
export interface ConfigDefaults {
  /** Program name (`echo-agent`), the default prefix of instance IDs. */
  program: string;
  defaultPort: number;
  /** The machine's host name (a container ID in Swarm). */
  hostname: string;
  /** The instance's own non-loopback addresses, best first. */
  addresses?: readonly string[];
}

/** Invalid configuration: every problem is listed; exits with code 2. */
export class ConfigError extends ConfigurationError {
  constructor(problems: readonly string[]) {
    super(problems);
    this.name = "ConfigError";
  }
}

/** Environment variables, as `Deno.env.toObject()` gives them. */
export type Env = Readonly<Record<string, string | undefined>>;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)?$/;
const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60 };

/** Parses `2s`, `500ms`, `1m` or a plain number of seconds; undefined when malformed. */
export function parseDurationSeconds(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_SECONDS[match[2] ?? "s"];
}

/** Parses a service's environment, throwing a {@linkcode ConfigError} listing every problem. */
export function parseServiceConfig(env: Env, defaults: ConfigDefaults): ServiceConfig {
  const problems: string[] = [];

  function text(name: string, fallback: string): string {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? fallback : value;
  }

  function duration(name: string, fallback: number, min: number, max: number): number {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === "") return fallback;
    const seconds = parseDurationSeconds(raw);
    if (seconds === undefined || seconds < min || seconds > max) {
      problems.push(`${name} must be a duration from ${min}s to ${max}s (like "2s"), got "${raw}"`);
      return fallback;
    }
    return seconds;
  }

  const consul = parseConsulSettings(env, { defaultAddress: "http://consul:8500" });
  problems.push(...consul.problems);

  const portText = text("PORT", String(defaults.defaultPort));
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    problems.push(`PORT must be an integer from 0 to 65535, got "${portText}"`);
  }

  // PORT + 1000 by default: one rule for every service, clear of the gRPC ports (50052...).
  const metricsDefault = port === 0 || !Number.isInteger(port) || port + 1000 > 65535
    ? "0"
    : String(port + 1000);
  const metricsText = text("METRICS_PORT", metricsDefault);
  const metricsPort = Number(metricsText);
  if (!/^\d+$/.test(metricsText) || metricsPort > 65535) {
    problems.push(`METRICS_PORT must be an integer from 0 to 65535, got "${metricsText}"`);
  } else if (metricsPort !== 0 && metricsPort === port) {
    problems.push(`METRICS_PORT must differ from PORT, both are "${metricsText}"`);
  }

  const logLevel = text("LOG_LEVEL", "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  }

  const advertiseAddr = text("ADVERTISE_ADDR", defaults.addresses?.[0] ?? "127.0.0.1");
  if (/\s|\//.test(advertiseAddr)) {
    problems.push(`ADVERTISE_ADDR must be a host name or IP address, got "${advertiseAddr}"`);
  }

  const prefix = text("SWARM_SERVICE_NAME", defaults.program);
  const serviceId = text("SERVICE_ID", `${prefix}-${defaults.hostname}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(serviceId)) {
    problems.push(`SERVICE_ID may hold letters, digits, ".", "_" and "-" only, got "${serviceId}"`);
  }

  const failuresText = text("CHECK_FAILURES", "3");
  const checkFailures = Number(failuresText);
  if (!/^\d+$/.test(failuresText) || checkFailures < 1 || checkFailures > 10) {
    problems.push(`CHECK_FAILURES must be an integer from 1 to 10, got "${failuresText}"`);
  }

  let expose: ServiceExposure | null = null;
  const lbPortText = text("LB_PORT", "");
  const lbMode = text("LB_MODE", "grpc").toLowerCase();
  if (lbMode !== "grpc" && lbMode !== "tcp") {
    problems.push(`LB_MODE must be "grpc" or "tcp", got "${lbMode}"`);
  }
  if (lbPortText !== "") {
    const lbPort = Number(lbPortText);
    if (!/^\d+$/.test(lbPortText) || lbPort < 1 || lbPort > 65535) {
      problems.push(`LB_PORT must be an integer from 1 to 65535, got "${lbPortText}"`);
    } else {
      expose = Object.freeze({ port: lbPort, mode: lbMode === "tcp" ? "tcp" : "grpc" });
    }
  }

  const streamsText = text("GRPC_MAX_CONCURRENT_STREAMS", String(DEFAULT_MAX_CONCURRENT_STREAMS));
  const grpcMaxConcurrentStreams = Number(streamsText);
  if (
    !/^\d+$/.test(streamsText) || grpcMaxConcurrentStreams < 1 ||
    grpcMaxConcurrentStreams > MAX_STREAMS
  ) {
    problems.push(
      `GRPC_MAX_CONCURRENT_STREAMS must be an integer from 1 to ${MAX_STREAMS}, got "${streamsText}"`,
    );
  }

  const config: ServiceConfig = {
    consulUrl: consul.settings.address,
    consul: consul.settings,
    port,
    advertiseAddr,
    serviceId,
    checkIntervalSeconds: duration("CHECK_INTERVAL", 2, 0.1, 300),
    checkFailures: Number.isInteger(checkFailures) ? checkFailures : 3,
    drainSeconds: duration("DRAIN_SECONDS", 2, 0, 300),
    graceSeconds: duration("GRACE_SECONDS", 10, 0, 600),
    logLevel: logLevel as LogLevel,
    expose,
    metricsPort,
    grpcMaxConcurrentStreams: Number.isInteger(grpcMaxConcurrentStreams) &&
        grpcMaxConcurrentStreams >= 1 && grpcMaxConcurrentStreams <= MAX_STREAMS
      ? grpcMaxConcurrentStreams
      : DEFAULT_MAX_CONCURRENT_STREAMS,
    grpcMaxDeadlineMs: Math.round(
      1000 * duration("GRPC_MAX_DEADLINE", DEFAULT_MAX_DEADLINE_MS / 1000, 0.001, 86_400),
    ),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** The non-loopback IPv4 addresses of this machine, from `Deno.networkInterfaces()` output. */
export function pickAddresses(
  interfaces: readonly { family: string; address: string; name: string }[],
): string[] {
  return interfaces
    .filter((entry) => entry.family === "IPv4" && !entry.address.startsWith("127."))
    .map((entry) => entry.address);
}
