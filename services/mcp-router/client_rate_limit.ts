/**
 * A token bucket per client, with a bounded number of clients (pure: the clock is passed in).
 * Used for session DELETEs: each one may cost a line in Consul, so one client must not be able to
 * spend every router's budget. Clients not seen for a while are forgotten first; a forgotten client
 * comes back with a full bucket, so the table's bound also bounds what forgetting can give away.
 */
import { createHash } from "node:crypto";

/** Options of {@linkcode ClientRateLimit}. */
export interface ClientRateLimitOptions {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Bucket size: how many may pass at once after a quiet spell. */
  burst: number;
  /** Clients remembered at most; default 10 000. */
  maxClients?: number;
}

/** The answer of {@linkcode ClientRateLimit.take}: allowed, or the seconds until it would be. */
export type RateDecision = { readonly allowed: true } | {
  readonly allowed: false;
  readonly retryAfterSeconds: number;
};

interface Bucket {
  tokens: number;
  at: number;
}

/** Per-client token buckets. */
export class ClientRateLimit {
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxClients: number;
  /** In order of last use: the first entry is the one to forget. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: ClientRateLimitOptions) {
    if (!(options.ratePerSecond > 0) || !(options.burst >= 1)) {
      throw new RangeError(
        `Invalid rate limit: rate ${options.ratePerSecond}/s, burst ${options.burst}`,
      );
    }
    this.#rate = options.ratePerSecond;
    this.#burst = options.burst;
    this.#maxClients = options.maxClients ?? 10_000;
  }

  /** Clients remembered now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token of `client` at `nowMs`, or says how long until one is there. */
  take(client: string, nowMs: number): RateDecision {
    let bucket = this.#buckets.get(client);
    if (bucket === undefined) {
      bucket = { tokens: this.#burst, at: nowMs };
      if (this.#buckets.size >= this.#maxClients) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
    } else {
      this.#buckets.delete(client);
      const elapsed = Math.max(0, nowMs - bucket.at) / 1000;
      bucket.tokens = Math.min(this.#burst, bucket.tokens + elapsed * this.#rate);
      bucket.at = nowMs;
    }
    this.#buckets.set(client, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterSeconds: Math.ceil((1 - bucket.tokens) / this.#rate) };
  }
}

/**
 * Who pays for a request: a digest of its `Authorization` header, else `"anonymous"` (every client
 * without one together; behind HAProxy the source address is HAProxy's). With auth off the header
 * is not checked, so a client may pick a new one each time: the limits that hold whatever the
 * key are the per-router ones.
 */
export function clientKey(request: Request): string {
  const header = request.headers.get("authorization");
  if (header === null || header === "") return "anonymous";
  return createHash("sha256").update(header).digest("hex").slice(0, 24);
}
