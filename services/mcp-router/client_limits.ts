/**
 * Admission of calls and listening streams: per client (request rate as a token bucket, calls in
 * flight, streams open) and router-wide (calls in flight). Pure bookkeeping; the caller passes the
 * clock and turns a {@linkcode Refusal} into an HTTP answer (429 for a client over its limits,
 * 503 when the router itself is full).
 *
 * The client table is bounded: past `maxClients`, the least recently seen client with nothing in
 * flight is forgotten (its bucket has most likely refilled, so forgetting costs nothing). A table
 * full of clients that all have something in flight refuses new clients (503) rather than grow.
 */
import { TokenBucket } from "./token_bucket.ts";

/** What {@linkcode ClientLimits} enforces. */
export interface ClientLimitSettings {
  /** Calls per second per client. */
  clientRate: number;
  clientBurst: number;
  /** Calls in flight per client. */
  clientConcurrency: number;
  /** Listening streams per client. */
  clientStreams: number;
  /** Clients remembered at once. */
  maxClients: number;
  /** Calls in flight on the router. */
  maxInFlight: number;
}

/** Which limit refused. */
export type LimitReason =
  | "client_rate"
  | "client_concurrency"
  | "client_streams"
  | "router_in_flight"
  | "router_clients"
  | "router_streams"
  | "session_streams"
  | "batch_size";

/** A refusal: the HTTP status, the reason and when to come back. */
export interface Refusal {
  /** 429: this client is over its limits; 503: the router is full. */
  readonly status: 429 | 503;
  readonly reason: LimitReason;
  /** Whole seconds, for `Retry-After`. */
  readonly retryAfterSeconds: number;
  readonly message: string;
}

interface ClientEntry {
  readonly bucket: TokenBucket;
  inFlight: number;
  streams: number;
}

/** Calls admitted for one request; release exactly once, when the request is over. */
export interface CallTicket {
  /** Calls held. */
  readonly calls: number;
  /** Whether the calls were given back. */
  readonly released: boolean;
  /** Admits `count` more calls at `nowMs` (a batch's other members), or refuses and holds what it held. */
  add(count: number, nowMs: number): Refusal | undefined;
  /** Gives the calls back; later calls do nothing. */
  release(): void;
}

/** One listening stream admitted; release once when it closes. */
export interface StreamTicket {
  release(): void;
}

/** Per-client and router-wide admission. */
export class ClientLimits {
  readonly #settings: ClientLimitSettings;
  readonly #clients = new Map<string, ClientEntry>();
  #inFlight = 0;

  constructor(settings: ClientLimitSettings) {
    this.#settings = settings;
  }

  /** Calls in flight on the router. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Clients remembered now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Admits `count` calls of `client` at `nowMs`, or says which limit refused. */
  admitCalls(client: string, count: number, nowMs: number): CallTicket | Refusal {
    const entry = this.#entry(client, nowMs);
    if (entry === undefined) return this.#tableFull();
    const refusal = this.#take(entry, count, nowMs);
    if (refusal !== undefined) return refusal;
    let held = count;
    let released = false;
    const ticket: CallTicket = {
      get calls() {
        return held;
      },
      get released() {
        return released;
      },
      add: (more, at) => {
        if (released) throw new Error("Ticket already released");
        const refused = this.#take(entry, more, at);
        if (refused === undefined) held += more;
        return refused;
      },
      release: () => {
        if (released) return;
        released = true;
        entry.inFlight -= held;
        this.#inFlight -= held;
      },
    };
    return ticket;
  }

  /** Admits one listening stream of `client` (counted against its rate too), or refuses. */
  admitStream(client: string, nowMs: number): StreamTicket | Refusal {
    const entry = this.#entry(client, nowMs);
    if (entry === undefined) return this.#tableFull();
    if (entry.streams >= this.#settings.clientStreams) {
      return {
        status: 429,
        reason: "client_streams",
        retryAfterSeconds: 1,
        message: `Too many listening streams: at most ${this.#settings.clientStreams} per client`,
      };
    }
    const wait = entry.bucket.take(1, nowMs);
    if (wait > 0) return rateRefusal(wait, this.#settings.clientRate);
    entry.streams++;
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        entry.streams--;
      },
    };
  }

  #take(entry: ClientEntry, count: number, nowMs: number): Refusal | undefined {
    const { clientConcurrency, maxInFlight, clientRate } = this.#settings;
    if (this.#inFlight + count > maxInFlight) {
      return {
        status: 503,
        reason: "router_in_flight",
        retryAfterSeconds: 1,
        message:
          `The router is saturated: ${this.#inFlight} calls in flight, at most ${maxInFlight}`,
      };
    }
    if (entry.inFlight + count > clientConcurrency) {
      return {
        status: 429,
        reason: "client_concurrency",
        retryAfterSeconds: 1,
        message: `Too many concurrent calls: at most ${clientConcurrency} per client`,
      };
    }
    const wait = entry.bucket.take(count, nowMs);
    if (wait > 0) return rateRefusal(wait, clientRate);
    entry.inFlight += count;
    this.#inFlight += count;
    return undefined;
  }

  /** The client's entry, most recently seen last; `undefined` when the table is full of busy ones. */
  #entry(client: string, nowMs: number): ClientEntry | undefined {
    const known = this.#clients.get(client);
    if (known !== undefined) {
      // Map order is insertion order: moving the entry to the end keeps the table in LRU order.
      this.#clients.delete(client);
      this.#clients.set(client, known);
      return known;
    }
    if (this.#clients.size >= this.#settings.maxClients && !this.#forgetOne()) return undefined;
    const entry: ClientEntry = {
      bucket: new TokenBucket(this.#settings.clientRate, this.#settings.clientBurst, nowMs),
      inFlight: 0,
      streams: 0,
    };
    this.#clients.set(client, entry);
    return entry;
  }

  /** Forgets the least recently seen client with nothing in flight; false when there is none. */
  #forgetOne(): boolean {
    for (const [key, entry] of this.#clients) {
      if (entry.inFlight === 0 && entry.streams === 0) {
        this.#clients.delete(key);
        return true;
      }
    }
    return false;
  }

  #tableFull(): Refusal {
    return {
      status: 503,
      reason: "router_clients",
      retryAfterSeconds: 1,
      message: `The router is saturated: ${this.#clients.size} clients have calls in flight`,
    };
  }
}

/** Whether an admission answer is a refusal. */
export function isRefusal(value: CallTicket | StreamTicket | Refusal): value is Refusal {
  return "status" in value;
}

function rateRefusal(waitMs: number, rate: number): Refusal {
  return {
    status: 429,
    reason: "client_rate",
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
    message: `Too many requests: at most ${rate} calls per second per client`,
  };
}
