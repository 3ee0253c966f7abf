/**
 * The router's limits (issue 11): per client, router-wide, on listening streams and on slow
 * clients. Every one is an environment setting with a default; `0` lifts the per-client rate,
 * burst and concurrency and the router's calls in flight (as `0` lifts HAProxy's, for a benchmark); {@linkcode parseLimitSettings} adds a
 * sentence per bad value to the caller's list, which `parseRouterConfig` turns into one
 * `ConfigError` (exit 2).
 */
import { type Env, parseDurationSeconds } from "../runtime/config.ts";
import { parseTrustedProxies, type TrustedProxyList } from "./trusted_proxies.ts";

/** The router's limits; durations in milliseconds. */
export interface LimitSettings {
  /** Calls a client may make per second, on average (`ROUTER_CLIENT_MAX_RATE`). */
  readonly clientRate: number;
  /** Calls a client may make at once after a quiet spell (`ROUTER_CLIENT_BURST`). */
  readonly clientBurst: number;
  /** Calls of a client in flight at once (`ROUTER_CLIENT_MAX_CONCURRENT`). */
  readonly clientConcurrency: number;
  /** Listening streams a client may hold open (`ROUTER_CLIENT_MAX_STREAMS`). */
  readonly clientStreams: number;
  /** Clients whose counters are kept; idle ones are forgotten first (`ROUTER_MAX_CLIENTS`). */
  readonly maxClients: number;
  /** Peers whose `X-Forwarded-For` names the client (`ROUTER_TRUSTED_PROXIES`). */
  readonly trustedProxies: TrustedProxyList;
  /** Calls in flight on this router, every client together (`ROUTER_MAX_IN_FLIGHT`). */
  readonly maxInFlight: number;
  /** Requests in one JSON-RPC batch (`ROUTER_MAX_BATCH`). */
  readonly maxBatch: number;
  /** Listening streams of one session (`ROUTER_MAX_STREAMS_PER_SESSION`). */
  readonly maxStreamsPerSession: number;
  /** Listening streams on this router (`ROUTER_MAX_STREAMS`). */
  readonly maxStreams: number;
  /** Comment lines on a quiet stream this often (`ROUTER_STREAM_HEARTBEAT`). */
  readonly streamHeartbeatMs: number;
  /** A stream with no message for this long is closed; the client reconnects (`ROUTER_STREAM_IDLE`). */
  readonly streamIdleMs: number;
  /** A stream is closed at this age whatever it carries (`ROUTER_STREAM_MAX_AGE`). */
  readonly streamMaxAgeMs: number;
  /** A request's header block must arrive within this (`ROUTER_HEADER_TIMEOUT`). */
  readonly headerTimeoutMs: number;
  /** A request's body must arrive within this of its headers (`ROUTER_BODY_TIMEOUT`). */
  readonly bodyTimeoutMs: number;
  /** A connection with no byte either way for this long is closed (`ROUTER_CONNECTION_IDLE`). */
  readonly connectionIdleMs: number;
  /** Client connections open at once on the MCP port (`ROUTER_MAX_CONNECTIONS`). */
  readonly maxConnections: number;
}

/** The defaults, as the README lists them. */
export const LIMIT_DEFAULTS: Readonly<Omit<LimitSettings, "trustedProxies">> = Object.freeze({
  clientRate: 200,
  clientBurst: 200,
  clientConcurrency: 64,
  clientStreams: 32,
  maxClients: 10_000,
  maxInFlight: 512,
  maxBatch: 32,
  maxStreamsPerSession: 4,
  maxStreams: 500,
  streamHeartbeatMs: 15_000,
  streamIdleMs: 10 * 60_000,
  streamMaxAgeMs: 60 * 60_000,
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  connectionIdleMs: 5 * 60_000,
  // About 110 KiB a connection (hyper's side 70, the guard's 40; measured with 1,000 open streams):
  // 1,024 of them stay within the router's 256 MiB container with ~100 MiB of its own.
  maxConnections: 1024,
});

/** Parses the limits from `env`; each bad value adds a sentence to `problems`. */
export function parseLimitSettings(env: Env, problems: string[]): LimitSettings {
  const d = LIMIT_DEFAULTS;
  const count = (name: string, fallback: number) => integer(env, name, fallback, problems);
  const liftable = (name: string, fallback: number) =>
    integer(env, name, fallback, problems, LIFTED);
  const ms = (name: string, fallback: number) => milliseconds(env, name, fallback, problems);
  let trustedProxies: TrustedProxyList = { addresses: [], names: [] };
  try {
    trustedProxies = parseTrustedProxies(env.ROUTER_TRUSTED_PROXIES ?? "");
  } catch (error) {
    problems.push(`Invalid ROUTER_TRUSTED_PROXIES: ${(error as Error).message}`);
  }
  const settings: LimitSettings = {
    clientRate: rate(env, "ROUTER_CLIENT_MAX_RATE", d.clientRate, problems),
    clientBurst: liftable("ROUTER_CLIENT_BURST", d.clientBurst),
    clientConcurrency: liftable("ROUTER_CLIENT_MAX_CONCURRENT", d.clientConcurrency),
    clientStreams: count("ROUTER_CLIENT_MAX_STREAMS", d.clientStreams),
    maxClients: count("ROUTER_MAX_CLIENTS", d.maxClients),
    trustedProxies,
    maxInFlight: liftable("ROUTER_MAX_IN_FLIGHT", d.maxInFlight),
    maxBatch: count("ROUTER_MAX_BATCH", d.maxBatch),
    maxStreamsPerSession: count("ROUTER_MAX_STREAMS_PER_SESSION", d.maxStreamsPerSession),
    maxStreams: count("ROUTER_MAX_STREAMS", d.maxStreams),
    streamHeartbeatMs: ms("ROUTER_STREAM_HEARTBEAT", d.streamHeartbeatMs),
    streamIdleMs: ms("ROUTER_STREAM_IDLE", d.streamIdleMs),
    streamMaxAgeMs: ms("ROUTER_STREAM_MAX_AGE", d.streamMaxAgeMs),
    headerTimeoutMs: ms("ROUTER_HEADER_TIMEOUT", d.headerTimeoutMs),
    bodyTimeoutMs: ms("ROUTER_BODY_TIMEOUT", d.bodyTimeoutMs),
    connectionIdleMs: ms("ROUTER_CONNECTION_IDLE", d.connectionIdleMs),
    maxConnections: count("ROUTER_MAX_CONNECTIONS", d.maxConnections),
  };
  // A batch needs a slot per request: a bigger one could never run.
  if (settings.maxBatch > settings.clientConcurrency) {
    problems.push(
      `ROUTER_MAX_BATCH (${settings.maxBatch}) must not exceed ROUTER_CLIENT_MAX_CONCURRENT ` +
        `(${settings.clientConcurrency}): a batch takes one concurrency slot per request`,
    );
  }
  if (settings.maxBatch > settings.clientBurst) {
    problems.push(
      `ROUTER_MAX_BATCH (${settings.maxBatch}) must not exceed ROUTER_CLIENT_BURST ` +
        `(${settings.clientBurst}): a batch takes one token per request`,
    );
  }
  if (settings.streamHeartbeatMs >= settings.streamIdleMs) {
    problems.push("ROUTER_STREAM_HEARTBEAT must be shorter than ROUTER_STREAM_IDLE");
  }
  return Object.freeze(settings);
}

/** What `0` means for a liftable limit: more than any client can reach. */
const LIFTED = Number.MAX_SAFE_INTEGER;

function integer(
  env: Env,
  name: string,
  fallback: number,
  problems: string[],
  zero?: number,
): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const value = Number(text);
  if (/^\d+$/.test(text) && Number.isSafeInteger(value)) {
    if (value > 0) return value;
    if (zero !== undefined) return zero;
  }
  problems.push(
    `Invalid ${name} "${text}": expected a positive integer${zero === undefined ? "" : " or 0"}`,
  );
  return fallback;
}

function rate(env: Env, name: string, fallback: number, problems: string[]): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const value = Number(text);
  if (/^\d+(\.\d+)?$/.test(text) && Number.isFinite(value)) {
    if (value > 0) return value;
    return LIFTED;
  }
  problems.push(
    `Invalid ${name} "${text}": expected a number of calls per second (0 lifts the limit)`,
  );
  return fallback;
}

function milliseconds(env: Env, name: string, fallback: number, problems: string[]): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const seconds = parseDurationSeconds(text);
  if (seconds === undefined || seconds <= 0) {
    problems.push(`Invalid ${name} "${text}": expected a duration like "30s", "500ms" or "10m"`);
    return fallback;
  }
  return Math.round(seconds * 1000);
}
