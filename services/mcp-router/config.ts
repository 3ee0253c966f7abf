/** The router's own settings, on top of the service environment every platform service reads. */
import { createHash } from "node:crypto";
import { ConfigError, type Env, parseDurationSeconds } from "../runtime/config.ts";
import { parseStrategy, type StrategyName } from "../runtime/strategies.ts";
import { parseSessionKey } from "./session_token.ts";
import { type LimitSettings, parseLimitSettings } from "./limit_settings.ts";
import { type OAuthSettings, parseOAuthSettings } from "./oauth_settings.ts";

/** The router's configuration. */
export interface RouterConfig {
  /** Hostnames an `Origin` header may name; `["*"]` allows any. */
  readonly allowedOriginHostnames: readonly string[];
  /** Largest request body, in bytes. */
  readonly maxBodyBytes: number;
  /** SHA-256 hex digests of the accepted bearer tokens; empty when auth is off. */
  readonly authTokenDigests: ReadonlySet<string>;
  /** Whether a bearer token is required: always, unless `ROUTER_AUTH=none` says otherwise. */
  readonly authRequired: boolean;
  /** OAuth access tokens accepted besides the static ones; undefined: static tokens only. */
  readonly oauth: OAuthSettings | undefined;
  /** The session key, or `undefined` when the router must make one. */
  readonly sessionKey: Uint8Array | undefined;
  /** Keys still accepted for tokens sealed before a rotation. */
  readonly previousSessionKeys: readonly Uint8Array[];
  /** Sessions older than this are refused, in seconds. */
  readonly sessionMaxAgeSeconds: number;
  /** Ended sessions one router holds at most until their tokens expire. */
  readonly endedSessionsMax: number;
  /** Sessions one client may end: per second, and at once after a quiet spell. */
  readonly sessionDeletes: { readonly ratePerSecond: number; readonly burst: number };
  /** Deadline of one tool call, in milliseconds. */
  readonly callDeadlineMs: number;
  /** Strategy per backend service from `LB_STRATEGY_<SERVICE>`, keyed by Consul service name form. */
  readonly strategies: ReadonlyMap<string, StrategyName>;
  /** Per-client, router-wide, stream and slow-client limits (`limit_settings.ts`). */
  readonly limits: LimitSettings;
}

/** What {@linkcode parseRouterConfig} needs besides the environment. */
export interface RouterConfigSources {
  /** Reads a file named by the environment (a Docker secret); throws when it cannot. */
  readTextFile(path: string): string;
}

/** Hostnames allowed by default: the localhost family. */
export const LOCALHOST_ORIGINS: readonly string[] = ["localhost", "127.0.0.1", "[::1]"];

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
const DEFAULT_DEADLINE_SECONDS = 60;
const DEFAULT_SESSION_MAX_AGE_SECONDS = 24 * 60 * 60;
const DEFAULT_ENDED_SESSIONS_MAX = 20_000;
const DEFAULT_SESSION_DELETE_RATE = 1;
const DEFAULT_SESSION_DELETE_BURST = 20;
const STRATEGY_PREFIX = "LB_STRATEGY_";

/** Parses the router's environment; rejects with a {@linkcode ConfigError} listing every problem. */
export function parseRouterConfig(env: Env, sources: RouterConfigSources): Promise<RouterConfig> {
  try {
    return Promise.resolve(parseRouterEnv(env, sources));
  } catch (error) {
    return Promise.reject(error);
  }
}

function parseRouterEnv(env: Env, sources: RouterConfigSources): RouterConfig {
  const problems: string[] = [];

  const allowedOriginHostnames = env.ROUTER_ALLOWED_ORIGINS?.trim()
    ? parseOrigins(env.ROUTER_ALLOWED_ORIGINS, problems)
    : [...LOCALHOST_ORIGINS];

  let maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  if (env.ROUTER_MAX_BODY_BYTES?.trim()) {
    const value = Number(env.ROUTER_MAX_BODY_BYTES.trim());
    if (Number.isInteger(value) && value > 0) maxBodyBytes = value;
    else {
      problems.push(
        `Invalid ROUTER_MAX_BODY_BYTES "${env.ROUTER_MAX_BODY_BYTES}": expected a positive integer`,
      );
    }
  }

  const callDeadlineMs = 1000 *
    duration(env, "ROUTER_CALL_DEADLINE", DEFAULT_DEADLINE_SECONDS, problems);
  const sessionMaxAgeSeconds = duration(
    env,
    "ROUTER_SESSION_MAX_AGE",
    DEFAULT_SESSION_MAX_AGE_SECONDS,
    problems,
  );

  const endedSessionsMax = positive(
    env,
    "ROUTER_ENDED_SESSIONS_MAX",
    DEFAULT_ENDED_SESSIONS_MAX,
    problems,
  );
  const sessionDeletes = Object.freeze({
    ratePerSecond: positive(
      env,
      "ROUTER_SESSION_DELETE_RATE",
      DEFAULT_SESSION_DELETE_RATE,
      problems,
      false,
    ),
    burst: positive(env, "ROUTER_SESSION_DELETE_BURST", DEFAULT_SESSION_DELETE_BURST, problems),
  });

  const authTokens: string[] = [];
  const tokensFile = env.ROUTER_AUTH_TOKENS_FILE?.trim();
  if (tokensFile) {
    const text = readFile(sources, tokensFile, "ROUTER_AUTH_TOKENS_FILE", problems);
    if (text !== undefined) {
      for (const line of text.split("\n")) {
        const token = line.trim();
        if (!token || token.startsWith("#")) continue;
        // RFC 6750, section 2.1: what a client can send as a bearer token (b64token).
        if (/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) authTokens.push(token);
        else {
          problems.push(
            `Invalid ROUTER_AUTH_TOKENS_FILE "${tokensFile}": a token has characters other than letters, digits and "-._~+/="`,
          );
        }
      }
      if (authTokens.length === 0) {
        problems.push(`Invalid ROUTER_AUTH_TOKENS_FILE "${tokensFile}": no token in it`);
      }
    }
  }

  const oauth = parseOAuthSettings(env, problems);
  // Authenticated by default: a router with no credential to check refuses to start, unless the
  // operator chose an open endpoint in so many words.
  const authMode = env.ROUTER_AUTH?.trim() || "required";
  const credentials = Boolean(tokensFile) || Boolean(env.ROUTER_OAUTH_ISSUER?.trim());
  if (authMode !== "required" && authMode !== "none") {
    problems.push(`Invalid ROUTER_AUTH "${env.ROUTER_AUTH}": expected "required" or "none"`);
  } else if (authMode === "none" && credentials) {
    problems.push(
      "ROUTER_AUTH=none contradicts ROUTER_AUTH_TOKENS_FILE or ROUTER_OAUTH_ISSUER: unset one",
    );
  } else if (authMode === "required" && !credentials) {
    problems.push(
      "No credentials to check: set ROUTER_AUTH_TOKENS_FILE (static tokens) or " +
        "ROUTER_OAUTH_ISSUER (OAuth), or ROUTER_AUTH=none to serve MCP without authentication",
    );
  }

  let sessionKey: Uint8Array | undefined;
  const keyFile = env.ROUTER_SESSION_KEY_FILE?.trim();
  if (env.ROUTER_SESSION_KEY?.trim() && keyFile) {
    problems.push("Set ROUTER_SESSION_KEY or ROUTER_SESSION_KEY_FILE, not both");
  } else if (env.ROUTER_SESSION_KEY?.trim()) {
    sessionKey = key(env.ROUTER_SESSION_KEY, "ROUTER_SESSION_KEY", problems);
  } else if (keyFile) {
    const text = readFile(sources, keyFile, "ROUTER_SESSION_KEY_FILE", problems);
    if (text !== undefined) sessionKey = key(text, "ROUTER_SESSION_KEY_FILE", problems);
  }
  const previousSessionKeys: Uint8Array[] = [];
  for (const part of (env.ROUTER_SESSION_KEY_OLD ?? "").split(",")) {
    if (!part.trim()) continue;
    const old = key(part, "ROUTER_SESSION_KEY_OLD", problems);
    if (old) previousSessionKeys.push(old);
  }

  const strategies = new Map<string, StrategyName>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(STRATEGY_PREFIX) || value === undefined) continue;
    try {
      strategies.set(strategyKey(name.slice(STRATEGY_PREFIX.length)), parseStrategy(value));
    } catch (error) {
      problems.push(`Invalid ${name}: ${(error as Error).message}`);
    }
  }

  const limits = parseLimitSettings(env, problems);
  // A call answered as JSON sends no byte until its answer: an idle cut would end it.
  if (limits.connectionIdleMs <= callDeadlineMs) {
    problems.push("ROUTER_CONNECTION_IDLE must be longer than ROUTER_CALL_DEADLINE");
  }

  if (problems.length > 0) throw new ConfigError(problems);
  const digests = new Set(authTokens.map(digestToken));
  return Object.freeze({
    allowedOriginHostnames: Object.freeze(allowedOriginHostnames),
    maxBodyBytes,
    authTokenDigests: digests,
    authRequired: authMode === "required",
    oauth,
    sessionKey,
    previousSessionKeys: Object.freeze(previousSessionKeys),
    sessionMaxAgeSeconds,
    endedSessionsMax,
    sessionDeletes,
    callDeadlineMs,
    strategies,
    limits,
  });
}

/** The `LB_STRATEGY_<SERVICE>` key of a Consul service name: `agent-echo` -> `AGENT_ECHO`. */
export function strategyKey(service: string): string {
  return service.toUpperCase().replaceAll(/[^A-Z0-9]/g, "_");
}

/** SHA-256 hex digest of a bearer token: what the router compares, never the token itself. */
export function digestToken(token: string): string {
  // node:crypto, not WebCrypto: it runs on every request, and `crypto.subtle.digest` costs 25 to
  // 37 µs a call here against under 1 µs (measured on Deno 2.9.6, a 43-character token).
  return createHash("sha256").update(token).digest("hex");
}

function parseOrigins(text: string, problems: string[]): string[] {
  const hostnames: string[] = [];
  for (const part of text.split(",")) {
    const entry = part.trim();
    if (!entry) continue;
    if (entry === "*") {
      hostnames.push("*");
      continue;
    }
    try {
      // Entries may be full origins (`https://app.example.com`) or bare hostnames.
      hostnames.push(
        entry.includes("://") ? new URL(entry).hostname : new URL(`http://${entry}`).hostname,
      );
    } catch {
      problems.push(`Invalid ROUTER_ALLOWED_ORIGINS entry "${entry}": not an origin or hostname`);
    }
  }
  return hostnames;
}

function duration(env: Env, name: string, fallback: number, problems: string[]): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const seconds = parseDurationSeconds(text);
  if (seconds === undefined || seconds <= 0) {
    problems.push(`Invalid ${name} "${text}": expected a duration like "30s" or "500ms"`);
    return fallback;
  }
  return seconds;
}

/** A positive number from `name` (an integer unless `integer` is false), else `fallback`. */
function positive(
  env: Env,
  name: string,
  fallback: number,
  problems: string[],
  integer = true,
): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const value = Number(text);
  if (Number.isFinite(value) && value > 0 && (!integer || Number.isInteger(value))) return value;
  problems.push(
    `Invalid ${name} "${text}": expected a positive ${integer ? "integer" : "number"}`,
  );
  return fallback;
}

function key(text: string, name: string, problems: string[]): Uint8Array | undefined {
  try {
    return parseSessionKey(text, name);
  } catch (error) {
    problems.push((error as Error).message);
    return undefined;
  }
}

function readFile(
  sources: RouterConfigSources,
  path: string,
  name: string,
  problems: string[],
): string | undefined {
  try {
    return sources.readTextFile(path);
  } catch (error) {
    problems.push(`Cannot read ${name} "${path}": ${(error as Error).message}`);
    return undefined;
  }
}
