/**
 * Sessions ended with DELETE, shared by every router through Consul KV, with a cost that clients
 * cannot grow: the layout is in `ended_session_segments.ts` (IDs grouped by token expiry, writer
 * and segment; a segment's key names its size, so readers fetch only what is new).
 *
 * What an ended session costs, with the defaults (24 h sessions, 1 s flushes, 20 000 per router):
 * - Consul: 17 bytes (its 16-character ID and a newline) in one segment value, kept until its token
 *   would have expired anyway, rounded up to the hour bucket (at most 25 h after the DELETE).
 * - Writes: none of its own. A router writes at most one KV transaction per flush interval,
 *   carrying every session ended there since the last one (each grown segment rewritten whole,
 *   4.3 KB at most), and one transaction of at most 64 deletes per sweep (every minute).
 * - Reads: every router's blocking query lists key names only (about 90 bytes per segment); a
 *   change makes it fetch the segments that are new or grew, never the whole store.
 * - Memory: each router keeps the IDs that Consul holds (about 100 bytes each), other routers'
 *   at most `maxKnownSegments` x 256.
 * The bounds: a router holds at most `capacity` unexpired ended sessions of its own (a DELETE
 * beyond it gets 503 with `Retry-After`, and that session simply lives until its token expires),
 * and each client (bearer token; without one, every client together) may end `burst` sessions at
 * once and `ratePerSecond` after that (429 with `Retry-After`). So Consul holds at most
 * `capacity` x 17 bytes per router process started within one session lifetime.
 *
 * Why not a shorter session lifetime with sliding renewal instead: a 2025-era MCP client keeps the
 * `Mcp-Session-Id` it got at initialize for the whole session (the transport has no way to hand it
 * a renewed one), so a token cannot slide; an idle timeout would need a shared last-seen time per
 * session, a write per request instead of one per DELETE.
 *
 * A DELETE answers once the flush carrying it was applied (or failed: then only this router
 * refuses the session, and it is logged), so another router refuses the session by the time the
 * client hears 200, give or take its blocking query's delivery. A router is not ready, and refuses
 * sessionful requests with 503, until it has read the store once.
 */
import { ConsulError } from "../runtime/consul/client.ts";
import type { ConsulClient } from "../runtime/consul/client.ts";
import { getKv, kvPath } from "../runtime/consul/kv.ts";
import { ConsulWatch } from "../runtime/consul/watch.ts";
import { delay } from "../runtime/delay.ts";
import { type Logger, SILENT_LOGGER } from "../runtime/logger.ts";
import { ClientRateLimit } from "./client_rate_limit.ts";
import {
  bucketSecondsFor,
  ENDED_SESSIONS_KV_PREFIX,
  EndedSessionLedger,
  type KvOperation,
  parseSegment,
  parseSegmentKeys,
  type SegmentKey,
  segmentKey,
} from "./ended_session_segments.ts";
import type { EndDecision, EndedSessions } from "./mcp_endpoint.ts";

export { ENDED_SESSIONS_KV_PREFIX };

/** Consul applies at most 64 operations per transaction. */
const MAX_TRANSACTION_OPERATIONS = 64;
/** Clocks of routers may differ: a bucket is kept this long past its end. */
const CLOCK_SKEW_SECONDS = 60;
/** Segments fetched at once while catching up. */
const FETCH_CONCURRENCY = 8;

/** Options of {@linkcode ConsulEndedSessions}. */
export interface ConsulEndedSessionsOptions {
  /** The Consul agent and the router's token (write on the router's KV prefix). */
  consul: ConsulClient;
  /** This process's name in keys: unique per router process (`[A-Za-z0-9_.-]`, 80 at most). */
  writer: string;
  /** Session lifetime in seconds: an ended session is kept until its token would expire. */
  maxAgeSeconds: number;
  /** Unexpired ended sessions this router holds at most; default 20 000. */
  capacity?: number;
  /** DELETEs per client: tokens per second and bucket size; default 1/s, burst 20. */
  perClient?: { ratePerSecond: number; burst: number };
  logger?: Logger;
  /** The clock; default `Date.now`. */
  now?: () => number;
  /** Least time between two writes of this router; default 1 s. */
  flushIntervalMs?: number;
  /** Time between two sweeps of expired buckets; default 60 s, 0 disables the timer. */
  sweepIntervalMs?: number;
  /** How long Consul may hold a blocking query; default 30 s. */
  waitSeconds?: number;
  /** Time allowed for one request to Consul; default 2 s. */
  writeTimeoutMs?: number;
  /**
   * Segments of other routers remembered at most (256 IDs each, about 25 KB of memory); default
   * 1024, ten routers' worth at their capacity. Past it a warning is logged and the rest ignored.
   */
  maxKnownSegments?: number;
}

/** A writer ID for this process: the instance ID (cleaned) and a random part, fresh per start. */
export function endedSessionsWriter(instanceId: string): string {
  const random = Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return `${instanceId.replaceAll(/[^A-Za-z0-9_.-]/g, "_").slice(0, 60)}.${random}`;
}

interface KnownSegment {
  readonly count: number;
  readonly sids: readonly string[];
}

/** Ended sessions known to this router: its own at once, every other router's via Consul. */
export class ConsulEndedSessions implements EndedSessions {
  readonly #options: ConsulEndedSessionsOptions;
  readonly #consul: ConsulClient;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #watch: ConsulWatch<Map<string, SegmentKey>>;
  readonly #ledger: EndedSessionLedger;
  readonly #limit: ClientRateLimit;
  readonly #abort = new AbortController();
  /** Segments read from Consul, by segment ID, and the segment each ID was read from. */
  readonly #known = new Map<string, KnownSegment>();
  readonly #shared = new Map<string, string>();
  #listed = new Map<string, SegmentKey>();
  #loaded = false;
  #syncing: Promise<void> | undefined;
  #resync = false;
  /** The flush that has not yet taken its plan: a DELETE joins it. */
  #nextFlush: Promise<void> | undefined;
  #runningFlush: Promise<void> = Promise.resolve();
  #lastFlushAt = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setInterval> | undefined;
  #sweeping: Promise<number> | undefined;

  constructor(options: ConsulEndedSessionsOptions) {
    this.#options = options;
    this.#consul = options.consul;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#now = options.now ?? Date.now;
    this.#ledger = new EndedSessionLedger(options.writer, {
      capacity: options.capacity ?? 20_000,
      bucketSeconds: bucketSecondsFor(options.maxAgeSeconds),
    });
    this.#limit = new ClientRateLimit(options.perClient ?? { ratePerSecond: 1, burst: 20 });
    this.#watch = new ConsulWatch(kvPath(ENDED_SESSIONS_KV_PREFIX), {
      consul: options.consul,
      query: { keys: "" },
      parse: parseSegmentKeys,
      notFoundBody: [],
      waitSeconds: options.waitSeconds,
      logger: this.#logger,
    });
    this.#watch.onChange((listed) => {
      this.#listed = listed;
      void this.#sync();
    });
  }

  /** Whether the store was read once: until then no session can be checked. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Ended sessions held here: this router's own and those read from Consul. */
  get size(): { own: number; shared: number } {
    return { own: this.#ledger.size, shared: this.#shared.size };
  }

  /** Starts following Consul and sweeping expired buckets. */
  start(): void {
    this.#watch.start();
    const every = this.#options.sweepIntervalMs ?? 60_000;
    if (every > 0 && this.#timer === undefined) {
      // Spread the routers' sweeps so they rarely delete the same keys at once.
      this.#timer = setInterval(() => void this.sweep(), every * (0.75 + Math.random() / 2));
    }
  }

  /** Resolves once the store was read once; rejects after `timeoutMs`. */
  async ready(timeoutMs = 10_000): Promise<void> {
    this.start();
    await this.#watch.ready(timeoutMs);
    while (!this.#loaded) {
      await (this.#syncing ?? delay(50, { signal: this.#abort.signal }));
      if (this.#abort.signal.aborted) throw new Error("Ended sessions closed before loading");
    }
  }

  /** Whether `sid` was ended, here or on any router whose write this router has read. */
  has(sid: string): boolean {
    return this.#ledger.has(sid) || this.#shared.has(sid);
  }

  /**
   * Ends `session` for `client` unless over a limit; resolves once the flush carrying it is done
   * (a failed write is logged: this router still refuses the session).
   */
  async end(session: { sid: string; issuedAt: number }, client: string): Promise<EndDecision> {
    if (this.has(session.sid)) return { ended: true };
    const nowMs = this.#now();
    const rate = this.#limit.take(client, nowMs);
    if (!rate.allowed) {
      return {
        ended: false,
        status: 429,
        retryAfterSeconds: rate.retryAfterSeconds,
        message: "Too many sessions ended by this client; try again later",
      };
    }
    const refusal = this.#ledger.add(session.sid, session.issuedAt + this.#options.maxAgeSeconds);
    if (refusal === "full") {
      const earliest = this.#ledger.earliestBucket ?? 0;
      const seconds = Math.ceil(earliest + CLOCK_SKEW_SECONDS - nowMs / 1000);
      return {
        ended: false,
        status: 503,
        retryAfterSeconds: Math.min(3600, Math.max(1, seconds)),
        message: "This router holds as many ended sessions as it may; the session stays open",
      };
    }
    await this.#requestFlush();
    return { ended: true };
  }

  /** Deletes expired buckets (this router's memory, and at most 64 keys in Consul). */
  sweep(): Promise<number> {
    this.#sweeping ??= this.#sweep().finally(() => this.#sweeping = undefined);
    return this.#sweeping;
  }

  /** Publishes what is unwritten, then stops following Consul and sweeping. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    // An aborted signal ends the flush delay: a stopping router publishes what it ended at once.
    this.#abort.abort();
    await this.#nextFlush;
    await this.#runningFlush;
    await this.#watch.close();
    await this.#syncing;
    await this.#sweeping;
  }

  /** The flush a new ended session rides on: one not yet planned, else a new one. */
  #requestFlush(): Promise<void> {
    this.#nextFlush ??= (async () => {
      await this.#runningFlush;
      const wait = this.#lastFlushAt + (this.#options.flushIntervalMs ?? 1_000) - Date.now();
      await delay(wait, { signal: this.#abort.signal });
      this.#nextFlush = undefined;
      this.#runningFlush = this.#flush();
      await this.#runningFlush;
      // More than one transaction's worth was waiting: the rest goes in the next interval.
      if (this.#ledger.unwritten > 0) void this.#requestFlush();
    })();
    return this.#nextFlush;
  }

  async #flush(): Promise<void> {
    this.#lastFlushAt = Date.now();
    const plan = this.#ledger.planFlush(MAX_TRANSACTION_OPERATIONS);
    if (plan === undefined) return;
    try {
      await this.#transaction(plan.operations);
      plan.commit();
    } catch (error) {
      this.#logger.warn("Cannot publish ended sessions to Consul; only this router refuses them", {
        unwritten: this.#ledger.unwritten,
        error: (error as Error).message,
      });
    }
  }

  async #sweep(): Promise<number> {
    const horizon = this.#now() / 1000 - CLOCK_SKEW_SECONDS;
    this.#ledger.expire(horizon);
    const expired = [...this.#listed.values()].filter((key) => key.bucket < horizon)
      .slice(0, MAX_TRANSACTION_OPERATIONS)
      .map((key): KvOperation => ({ verb: "delete", key: segmentKey(key) }));
    if (expired.length === 0) return 0;
    try {
      await this.#transaction(expired);
    } catch (error) {
      this.#logger.warn("Cannot delete expired ended sessions from Consul", {
        error: (error as Error).message,
      });
      return 0;
    }
    this.#logger.debug("Expired ended sessions swept", { segments: expired.length });
    return expired.length;
  }

  async #transaction(operations: readonly KvOperation[]): Promise<void> {
    const body = operations.map((operation) => ({
      KV: operation.verb === "set"
        ? { Verb: "set", Key: operation.key, Value: encodeBase64(operation.value) }
        : { Verb: "delete", Key: operation.key },
    }));
    await this.#consul.put("/v1/txn", {
      body,
      timeoutMs: this.#options.writeTimeoutMs ?? 2_000,
    });
  }

  /** Brings the known segments in line with the latest listing; one run at a time. */
  #sync(): Promise<void> {
    if (this.#syncing !== undefined) {
      this.#resync = true;
      return this.#syncing;
    }
    this.#syncing = (async () => {
      do {
        this.#resync = false;
        const complete = await this.#syncOnce(this.#listed);
        if (complete) this.#loaded = true;
      } while (this.#resync && !this.#abort.signal.aborted);
    })().finally(() => this.#syncing = undefined);
    return this.#syncing;
  }

  /** Fetches new and grown segments, forgets vanished ones; false when a fetch failed. */
  async #syncOnce(listed: Map<string, SegmentKey>): Promise<boolean> {
    for (const [id, known] of this.#known) {
      if (listed.has(id)) continue;
      this.#known.delete(id);
      for (const sid of known.sids) if (this.#shared.get(sid) === id) this.#shared.delete(sid);
    }
    // This router's own segments are in its ledger already.
    const stale = [...listed].filter(([id, key]) =>
      key.writer !== this.#options.writer && (this.#known.get(id)?.count ?? 0) < key.count
    );
    const room = (this.#options.maxKnownSegments ?? 1024) - this.#known.size;
    if (stale.length > room) {
      this.#logger.warn("More ended-session segments in Consul than a router keeps; some ignored", {
        listed: listed.size,
      });
    }
    let complete = true;
    const todo = stale.slice(0, Math.max(0, room));
    for (let at = 0; at < todo.length && !this.#abort.signal.aborted; at += FETCH_CONCURRENCY) {
      await Promise.all(
        todo.slice(at, at + FETCH_CONCURRENCY).map(async ([id, key]) => {
          let text: string | undefined;
          try {
            text = await getKv(this.#consul, segmentKey(key), {
              timeoutMs: this.#options.writeTimeoutMs ?? 2_000,
              signal: this.#abort.signal,
            });
          } catch (error) {
            complete = false;
            if (!(error instanceof ConsulError) || error.code !== "CONSUL_HTTP") return;
            this.#logger.warn("Cannot read an ended-session segment", { error: error.message });
            return;
          }
          // Gone: it grew (renamed) or expired since the listing; the next listing names it.
          if (text === undefined) {
            complete = false;
            return;
          }
          const sids = parseSegment(text);
          this.#known.set(id, { count: key.count, sids });
          for (const sid of sids) this.#shared.set(sid, id);
        }),
      );
    }
    return complete && !this.#abort.signal.aborted;
  }
}

function encodeBase64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}
