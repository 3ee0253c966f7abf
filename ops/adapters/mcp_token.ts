/**
 * The credentials a client of a deployed stack presents, read from where `deploy` keeps them:
 * the MCP bearer token (`.platform/secrets/mcp-token`, or the first token of
 * `PLATFORM_MCP_TOKENS_FILE` when the operator gave the tokens) and HAProxy's stats
 * `user:password`. One helper for every client in the repository (probe, e2e tests, benchmarks).
 */
import { DEFAULT_STACK, type Env } from "../config.ts";
import { mcpTokenPath, parseTokenLines, statsAuthPath } from "../plan/front_door_secrets.ts";
import { parseStatsCredentials } from "../plan/secrets.ts";
import { readOptionalTextFile, readTextFile } from "./files.ts";

/** Where to look: the checkout and the environment the ops tool runs with. */
export interface ClientCredentialsOptions {
  /** `PLATFORM_STACK` and `PLATFORM_MCP_TOKENS_FILE` / `PLATFORM_STATS_AUTH_FILE` are read. */
  env?: Env;
  /** Overrides `PLATFORM_STACK`. */
  stack?: string;
}

/** The file the MCP token is read from for `stack` (the operator's tokens file when set). */
export function mcpTokenFile(root: string, options: ClientCredentialsOptions = {}): string {
  const env = options.env ?? {};
  const given = env.PLATFORM_MCP_TOKENS_FILE?.trim();
  if (given) return given;
  return `${root}/${mcpTokenPath(options.stack ?? env.PLATFORM_STACK ?? DEFAULT_STACK)}`;
}

/**
 * The bearer token for the stack's MCP endpoint; undefined when there is none (a stack deployed
 * with `--no-auth`, or not deployed from this checkout). Throws when the file is malformed.
 */
export async function readMcpToken(
  root: string,
  options: ClientCredentialsOptions = {},
): Promise<string | undefined> {
  const file = mcpTokenFile(root, options);
  const text = await readOptionalTextFile(file);
  return text === undefined ? undefined : parseTokenLines(text, file)[0];
}

/**
 * HAProxy's stats `user:password` for the stack: `PLATFORM_STATS_AUTH_FILE` (which must exist),
 * else the file `deploy` keeps; undefined when neither is there. Throws when malformed.
 */
export async function readStatsAuth(
  root: string,
  options: ClientCredentialsOptions = {},
): Promise<string | undefined> {
  const env = options.env ?? {};
  const given = env.PLATFORM_STATS_AUTH_FILE?.trim();
  if (given) return parseStatsCredentials(await readTextFile(given), given);
  const kept = `${root}/${statsAuthPath(options.stack ?? env.PLATFORM_STACK ?? DEFAULT_STACK)}`;
  const text = await readOptionalTextFile(kept);
  return text === undefined ? undefined : parseStatsCredentials(text, kept);
}

/** `Authorization: Bearer …` as a header record; empty without a token. */
export function bearerHeaders(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** `Authorization: Basic …` for `user:password`; empty without credentials. */
export function basicHeaders(credentials: string | undefined): Record<string, string> {
  if (credentials === undefined) return {};
  const bytes = new TextEncoder().encode(credentials);
  return { authorization: `Basic ${btoa(String.fromCharCode(...bytes))}` };
}

/**
 * A fetch that adds the bearer token to every request (what the MCP SDK transports take as
 * `fetch`); `base` itself without a token.
 */
export function fetchWithBearer(
  token: string | undefined,
  base: typeof fetch = fetch,
): typeof fetch {
  if (token === undefined) return base;
  return (input, init) => {
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : {}));
    headers.set("authorization", `Bearer ${token}`);
    return base(input, { ...init, headers });
  };
}
