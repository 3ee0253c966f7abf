/**
 * The issuer's JSON Web Key Set, fetched when first needed and kept with a bounded refresh.
 *
 * Key selection and import are jose's (`createLocalJWKSet`); its `createRemoteJWKSet` is not used
 * because it reads the whole response with `response.json()`: the JWKS endpoint is a network peer
 * like any other, and a hostile or broken one could send an endless body. Here the body is read up
 * to {@linkcode JwksCacheOptions.maxBytes} within {@linkcode JwksCacheOptions.timeoutMs}, without
 * following redirects, and only public signature keys of the asymmetric key types are kept. Were
 * jose's remote set to gain a body limit, this file would shrink to its options.
 *
 * Refresh: the set is fetched again when older than `maxAgeMs` (in the background: the keys held
 * serve meanwhile), or when a token names a key it does not hold (a rotation), at most once per
 * `cooldownMs` however many such tokens arrive, and concurrent requests share one fetch. A failed
 * refresh keeps the keys already held.
 */
import {
  createLocalJWKSet,
  type CryptoKey as JoseCryptoKey,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWK,
  type JWSHeaderParameters,
} from "jose";
import type { Logger } from "../runtime/logger.ts";

/** Options of {@linkcode JwksCache}. */
export interface JwksCacheOptions {
  /** The fetch to use (a test's, or the global one). */
  fetch?: typeof fetch;
  /** Milliseconds since the epoch. */
  now?: () => number;
  /** Largest JWKS body accepted, in bytes (default 64 KiB). */
  maxBytes?: number;
  /** Time for the whole fetch, body included, in milliseconds (default 5 s). */
  timeoutMs?: number;
  /** Age after which the set is fetched again, in milliseconds (default 10 min). */
  maxAgeMs?: number;
  /** Least time between two fetches, in milliseconds (default 30 s). */
  cooldownMs?: number;
  /** Most keys kept from one set (default 32). */
  maxKeys?: number;
  /** Each fetch is an event (at most one per cooldown): its outcome is logged here. */
  logger?: Pick<Logger, "info" | "warn">;
}

/** No key set could be had from the issuer: tokens cannot be checked now (not the token's fault). */
export class JwksUnavailableError extends Error {
  /** For callers that branch on the condition. */
  readonly code = "JWKS_UNAVAILABLE";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "JwksUnavailableError";
  }
}

const DEFAULTS = {
  maxBytes: 64 * 1024,
  timeoutMs: 5_000,
  maxAgeMs: 10 * 60_000,
  cooldownMs: 30_000,
  maxKeys: 32,
};

// Asymmetric key types only: a symmetric ("oct") key in a public set would let anyone who can read
// the set sign tokens.
const KEY_TYPES = new Set(["RSA", "EC", "OKP"]);

/** An issuer's key set, fetched lazily and refreshed within bounds. */
export class JwksCache {
  readonly #url: string;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #options: typeof DEFAULTS;
  readonly #logger: Pick<Logger, "info" | "warn"> | undefined;
  #keys: ReturnType<typeof createLocalJWKSet> | undefined;
  #fetchedAt = 0;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | undefined;
  #lastError: Error | undefined;
  /** Fetches done so far, successful or not (for tests and metrics). */
  fetches = 0;

  constructor(url: string, options: JwksCacheOptions = {}) {
    this.#url = url;
    this.#fetch = options.fetch ?? fetch;
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
    this.#options = {
      maxBytes: options.maxBytes ?? DEFAULTS.maxBytes,
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
      maxAgeMs: options.maxAgeMs ?? DEFAULTS.maxAgeMs,
      cooldownMs: options.cooldownMs ?? DEFAULTS.cooldownMs,
      maxKeys: options.maxKeys ?? DEFAULTS.maxKeys,
    };
  }

  /** The key resolver for jose's `jwtVerify`. */
  readonly getKey = async (
    header: JWSHeaderParameters,
    token?: FlattenedJWSInput,
  ): Promise<JoseCryptoKey> => {
    if (this.#keys === undefined) await this.#refresh();
    else if (this.#now() - this.#fetchedAt > this.#options.maxAgeMs) {
      // Stale keys still serve while the set is fetched again: no request waits on the issuer.
      this.#refresh().catch(() => {});
    }
    if (this.#keys === undefined) {
      throw new JwksUnavailableError(
        `Cannot get the issuer's keys from "${this.#url}": ${
          this.#lastError?.message ?? "no answer"
        }`,
        { cause: this.#lastError },
      );
    }
    try {
      return await this.#keys(header, token);
    } catch (error) {
      // A key ID the set lacks may be a rotation the issuer made since the last fetch.
      if ((error as { code?: string }).code !== "ERR_JWKS_NO_MATCHING_KEY") throw error;
      if (!(await this.#refresh())) throw error;
      return await this.#keys!(header, token);
    }
  };

  /** Fetches again unless one is under way or the last began within the cooldown. */
  async #refresh(): Promise<boolean> {
    if (this.#pending === undefined) {
      if (this.#now() - this.#attemptedAt < this.#options.cooldownMs) return false;
      this.#attemptedAt = this.#now();
      this.#pending = this.#load().finally(() => this.#pending = undefined);
    }
    await this.#pending;
    return true;
  }

  async #load(): Promise<void> {
    this.fetches++;
    try {
      const set = await this.#download();
      this.#keys = createLocalJWKSet(set);
      this.#fetchedAt = this.#now();
      this.#lastError = undefined;
      this.#logger?.info("OAuth key set fetched", { url: this.#url, keys: set.keys.length });
    } catch (error) {
      this.#lastError = error as Error;
      this.#logger?.warn("Cannot fetch the OAuth key set", {
        url: this.#url,
        error: (error as Error).message,
        keptKeys: this.#keys !== undefined,
      });
    }
  }

  async #download(): Promise<JSONWebKeySet> {
    const { maxBytes, timeoutMs, maxKeys } = this.#options;
    const response = await this.#fetch(this.#url, {
      headers: { accept: "application/json, application/jwk-set+json" },
      redirect: "error",
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status}`);
    }
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw new Error(`a body of ${declared} bytes is over the limit of ${maxBytes}`);
    }
    const text = await readBounded(response, maxBytes);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error("the body is not JSON");
    }
    const keys = (body as { keys?: unknown })?.keys;
    if (!Array.isArray(keys)) throw new Error('the body has no "keys" array');
    const usable = keys.filter((key): key is JWK =>
      typeof key === "object" && key !== null && KEY_TYPES.has((key as JWK).kty ?? "") &&
      !("d" in key)
    ).slice(0, maxKeys);
    if (usable.length === 0) throw new Error("the set has no public signature key");
    return { keys: usable };
  }
}

/** The body as text, refused once it grows past `maxBytes`. */
async function readBounded(response: Response, maxBytes: number): Promise<string> {
  if (response.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error(`the body is over the limit of ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}
