/**
 * Sessions ended with DELETE, shared by every router through Consul KV: one key per ended session,
 * `platform/mcp-router/ended-sessions/<expires at, unix seconds>-<sid>`, followed by every router
 * with a blocking query on the keys alone (no values to transfer). A key is useless once the
 * session's token has expired anyway, so every router deletes the expired keys it sees now and
 * then: the prefix holds at most the sessions ended within one session lifetime.
 */
import type { ConsulClient } from "../runtime/consul/client.ts";
import { deleteKv, kvPath, putKv } from "../runtime/consul/kv.ts";
import { ConsulWatch } from "../runtime/consul/watch.ts";
import { type Logger, SILENT_LOGGER } from "../runtime/logger.ts";
import type { EndedSessions } from "./mcp_endpoint.ts";

/** The KV prefix of ended sessions. */
export const ENDED_SESSIONS_KV_PREFIX = "platform/mcp-router/ended-sessions/";

/** The KV key of an ended session. */
export function endedSessionKey(sid: string, expiresAt: number): string {
  return `${ENDED_SESSIONS_KV_PREFIX}${Math.ceil(expiresAt)}-${sid}`;
}

/** Ended session IDs and their expiry (unix seconds) from `GET /v1/kv/<prefix>?keys`. */
export function parseEndedSessionKeys(body: unknown): Map<string, number> {
  if (!Array.isArray(body)) throw new TypeError("Consul KV keys answer is not an array");
  const ended = new Map<string, number>();
  for (const key of body) {
    if (typeof key !== "string" || !key.startsWith(ENDED_SESSIONS_KV_PREFIX)) continue;
    const match = /^(\d+)-([A-Za-z0-9_-]+)$/.exec(key.slice(ENDED_SESSIONS_KV_PREFIX.length));
    if (match) ended.set(match[2], Number(match[1]));
  }
  return ended;
}

/** Options of {@linkcode ConsulEndedSessions}. */
export interface ConsulEndedSessionsOptions {
  /** The Consul agent and the router's token (write on the router's KV prefix). */
  consul: ConsulClient;
  /** Session lifetime in seconds: a key expires at the session's issue time plus this. */
  maxAgeSeconds: number;
  logger?: Logger;
  /** The clock; default `Date.now`. */
  now?: () => number;
  /** Time between two sweeps of expired keys; default 60 s, 0 disables the timer. */
  cleanupIntervalMs?: number;
  /** Keys deleted by one sweep at most, so a backlog never floods Consul; default 200. */
  cleanupBatch?: number;
  /** How long Consul may hold a blocking query; default 30 s. */
  waitSeconds?: number;
  /** Time allowed for a write to Consul; default 2 s. */
  writeTimeoutMs?: number;
}

/** Ended sessions known to this router: its own, at once, and every other router's via Consul. */
export class ConsulEndedSessions implements EndedSessions {
  readonly #options: ConsulEndedSessionsOptions;
  readonly #consul: ConsulClient;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #watch: ConsulWatch<Map<string, number>>;
  /** Ended here, kept until they show up in Consul or expire (a failed write still counts). */
  readonly #local = new Map<string, number>();
  #shared = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #sweeping: Promise<number> | undefined;

  constructor(options: ConsulEndedSessionsOptions) {
    this.#options = options;
    this.#consul = options.consul;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#now = options.now ?? Date.now;
    this.#watch = new ConsulWatch(kvPath(ENDED_SESSIONS_KV_PREFIX), {
      consul: options.consul,
      query: { keys: "" },
      parse: parseEndedSessionKeys,
      notFoundBody: [],
      waitSeconds: options.waitSeconds,
      logger: this.#logger,
    });
    this.#watch.onChange((ended) => {
      this.#shared = ended;
      for (const sid of ended.keys()) this.#local.delete(sid);
    });
  }

  /** Starts following Consul and sweeping expired keys. */
  start(): void {
    this.#watch.start();
    const every = this.#options.cleanupIntervalMs ?? 60_000;
    if (every > 0 && this.#timer === undefined) {
      // Spread the routers' sweeps so they rarely delete the same keys at once.
      this.#timer = setInterval(() => void this.sweep(), every * (0.75 + Math.random() / 2));
    }
  }

  /** Resolves once Consul answered once; rejects after `timeoutMs`. */
  async ready(timeoutMs?: number): Promise<void> {
    this.start();
    await this.#watch.ready(timeoutMs);
  }

  /** Whether `sid` was ended, here or on any router whose write reached Consul. */
  has(sid: string): boolean {
    return this.#local.has(sid) || this.#shared.has(sid);
  }

  /** Records the end here at once, then in Consul; a failed write is logged, not thrown. */
  async add(sid: string, issuedAt: number): Promise<void> {
    const expiresAt = issuedAt + this.#options.maxAgeSeconds;
    this.#local.set(sid, expiresAt);
    const key = endedSessionKey(sid, expiresAt);
    try {
      await this.#request("PUT", key, "1");
    } catch (error) {
      this.#logger.warn("Cannot publish an ended session to Consul; only this router refuses it", {
        sid,
        error: (error as Error).message,
      });
    }
  }

  /** Deletes the keys of expired sessions; resolves with how many were deleted. */
  sweep(): Promise<number> {
    this.#sweeping ??= this.#sweep().finally(() => this.#sweeping = undefined);
    return this.#sweeping;
  }

  /** Stops following Consul and sweeping. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#watch.close();
    await this.#sweeping;
  }

  async #sweep(): Promise<number> {
    const nowSeconds = this.#now() / 1000;
    for (const [sid, expiresAt] of this.#local) {
      if (expiresAt < nowSeconds) this.#local.delete(sid);
    }
    const expired = [...this.#shared].filter(([, expiresAt]) => expiresAt < nowSeconds)
      .slice(0, this.#options.cleanupBatch ?? 200);
    let deleted = 0;
    for (const [sid, expiresAt] of expired) {
      try {
        await this.#request("DELETE", endedSessionKey(sid, expiresAt));
        deleted++;
      } catch (error) {
        this.#logger.warn("Cannot delete an expired ended-session key", {
          sid,
          error: (error as Error).message,
        });
        break;
      }
    }
    if (deleted > 0) this.#logger.debug("Expired ended sessions swept", { deleted });
    return deleted;
  }

  async #request(method: "PUT" | "DELETE", key: string, body?: string): Promise<void> {
    const options = { timeoutMs: this.#options.writeTimeoutMs ?? 2_000 };
    if (method === "PUT") await putKv(this.#consul, key, { ...options, value: body ?? "" });
    else await deleteKv(this.#consul, key, options);
  }
}
