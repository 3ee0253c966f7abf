/** Sessions ended with DELETE on this replica, remembered until their tokens would expire anyway. */
import type { EndedSessions } from "./mcp_endpoint.ts";

/** Options of {@linkcode LocalEndedSessions}. */
export interface LocalEndedSessionsOptions {
  /** Session lifetime in seconds: an entry is dropped once the token could not open anyway. */
  maxAgeSeconds: number;
  now?: () => number;
}

/** An in-memory set of ended session IDs, pruned as tokens expire. */
export class LocalEndedSessions implements EndedSessions {
  readonly #expiry = new Map<string, number>();
  readonly #maxAgeMs: number;
  readonly #now: () => number;

  constructor(options: LocalEndedSessionsOptions) {
    this.#maxAgeMs = options.maxAgeSeconds * 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Whether `sid` was ended. */
  has(sid: string): boolean {
    return this.#expiry.has(sid);
  }

  /** Records that `sid`, issued at `issuedAt` (seconds), has ended. */
  add(sid: string, issuedAt: number): void {
    const now = this.#now();
    for (const [id, expiry] of this.#expiry) if (expiry < now) this.#expiry.delete(id);
    this.#expiry.set(sid, issuedAt * 1000 + this.#maxAgeMs);
  }

  /** How many are remembered. */
  get size(): number {
    return this.#expiry.size;
  }
}
