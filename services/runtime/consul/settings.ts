/**
 * Where Consul is and which token to send, read from the environment as Consul's own tools read it:
 * `CONSUL_HTTP_ADDR`, and `CONSUL_HTTP_TOKEN` or `CONSUL_HTTP_TOKEN_FILE` (a Docker secret in the
 * stack). The token given inline wins over the file, as with the `consul` CLI.
 */
import { ConsulClient } from "./client.ts";

/** Consul settings from the environment. */
export interface ConsulSettings {
  /** Base URL with its scheme, e.g. `http://consul:8500`. */
  readonly address: string;
  /** The token given inline, if any. */
  readonly token: string | undefined;
  /** The file holding the token, if any (read by {@linkcode loadConsulToken}). */
  readonly tokenFile: string | undefined;
}

/** Options of {@linkcode parseConsulSettings}. */
export interface ParseConsulSettingsOptions {
  /** The address when `CONSUL_HTTP_ADDR` is unset. */
  defaultAddress: string;
}

/** Reads the Consul settings; returns the problems found instead of throwing, for config parsers. */
export function parseConsulSettings(
  env: Readonly<Record<string, string | undefined>>,
  options: ParseConsulSettingsOptions,
): { settings: ConsulSettings; problems: string[] } {
  const problems: string[] = [];
  const raw = (env.CONSUL_HTTP_ADDR?.trim() || options.defaultAddress).replace(/\/+$/, "");
  const address = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  try {
    const url = new URL(address);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("scheme");
  } catch {
    problems.push(`CONSUL_HTTP_ADDR must be an http(s) URL or host:port, got "${raw}"`);
  }
  const token = env.CONSUL_HTTP_TOKEN?.trim() || undefined;
  if (token !== undefined && !isTokenText(token)) {
    problems.push("CONSUL_HTTP_TOKEN must be printable ASCII without spaces");
  }
  const tokenFile = env.CONSUL_HTTP_TOKEN_FILE?.trim() || undefined;
  return { settings: Object.freeze({ address, token, tokenFile }), problems };
}

/** Whether `text` can be sent as an `X-Consul-Token` header. */
export function isTokenText(text: string): boolean {
  return /^[\x21-\x7e]{1,256}$/.test(text);
}

/**
 * The token to send: the inline one, else the file's content (trimmed), else none. Throws naming
 * the file when it cannot be read or holds no usable token.
 */
export async function loadConsulToken(
  settings: ConsulSettings,
  readTextFile: (path: string) => Promise<string> = Deno.readTextFile,
): Promise<string | undefined> {
  if (settings.token !== undefined) return settings.token;
  if (settings.tokenFile === undefined) return undefined;
  let text: string;
  try {
    text = await readTextFile(settings.tokenFile);
  } catch (error) {
    throw new Error(
      `Cannot read CONSUL_HTTP_TOKEN_FILE "${settings.tokenFile}": ${(error as Error).message}`,
      { cause: error },
    );
  }
  const token = text.trim();
  if (!isTokenText(token)) {
    throw new Error(`CONSUL_HTTP_TOKEN_FILE "${settings.tokenFile}" holds no usable token`);
  }
  return token;
}

/** A client for the settings, with the token read from its file when needed. */
export async function consulClientFromSettings(
  settings: ConsulSettings,
  options: { timeoutMs?: number; readTextFile?: (path: string) => Promise<string> } = {},
): Promise<ConsulClient> {
  const token = await loadConsulToken(settings, options.readTextFile);
  return new ConsulClient(settings.address, { token, timeoutMs: options.timeoutMs });
}
