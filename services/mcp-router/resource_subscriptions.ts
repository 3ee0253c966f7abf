/**
 * Resource subscriptions on this router replica: which sessions follow which URI, and one backend
 * watch (WatchResource) per URI however many sessions follow it. When a watch ends (its instance
 * stopped, crashed or was replaced) while sessions still follow the URI, it is opened again on an
 * instance found then, after a backoff: subscriptions outlive the instance that served them. A
 * change while no watch was open would go unseen, so a reopened watch tells the sessions the
 * resource may have changed (an update is a hint to read it again, never a payload).
 *
 * Bounded: at most `maxPerSession` URIs per session and `maxTotal` (session, URI) pairs, so clients
 * cannot make the router open streams without limit.
 */
import type { Logger } from "../runtime/logger.ts";
import type { ResourceWatch } from "./backend_rpc.ts";

/** What the hub needs to open watches. */
export interface WatchOpener {
  watchResource(service: string, uri: string, onUpdate: () => void): ResourceWatch;
}

/** Options of {@linkcode ResourceSubscriptions}. */
export interface ResourceSubscriptionsOptions {
  rpc: WatchOpener;
  /** The service serving `uri` now, or `undefined`. */
  resolve(uri: string): string | undefined;
  /** Called with the sessions following `uri` each time it changes. */
  onUpdated(uri: string, sessions: ReadonlySet<string>): void;
  logger: Logger;
  /** Most URIs one session may follow; default 1,000. */
  maxPerSession?: number;
  /** Most (session, URI) pairs on this replica; default 100,000. */
  maxTotal?: number;
  /** First and longest pause before a watch is opened again; default 100 ms and 5 s. */
  retryMs?: { first: number; max: number };
}

/** Why a subscription was refused. */
export class SubscriptionError extends Error {
  /** `unknown`: no service serves the URI; `limit`: a bound was reached. */
  readonly code: "unknown" | "limit";

  constructor(code: "unknown" | "limit", message: string) {
    super(message);
    this.name = "SubscriptionError";
    this.code = code;
  }
}

interface Followed {
  readonly sessions: Set<string>;
  watch: ResourceWatch | undefined;
  retry: ReturnType<typeof setTimeout> | undefined;
  failures: number;
}

/** The sessions following each URI, and the backend watches that serve them. */
export class ResourceSubscriptions {
  readonly #options: ResourceSubscriptionsOptions;
  readonly #byUri = new Map<string, Followed>();
  readonly #bySession = new Map<string, Set<string>>();
  readonly #maxPerSession: number;
  readonly #maxTotal: number;
  readonly #retry: { first: number; max: number };
  #total = 0;
  #closed = false;

  constructor(options: ResourceSubscriptionsOptions) {
    this.#options = options;
    this.#maxPerSession = options.maxPerSession ?? 1_000;
    this.#maxTotal = options.maxTotal ?? 100_000;
    this.#retry = options.retryMs ?? { first: 100, max: 5_000 };
  }

  /** (session, URI) pairs held. */
  get size(): number {
    return this.#total;
  }

  /** Backend watches open now. */
  get openWatches(): number {
    let open = 0;
    for (const followed of this.#byUri.values()) if (followed.watch) open++;
    return open;
  }

  /** The instance each URI is watched on now (`""` while reopening). */
  instances(): Map<string, string> {
    return new Map([...this.#byUri].map(([uri, f]) => [uri, f.watch?.instance ?? ""]));
  }

  /** Adds `session` to the followers of `uri`; throws a {@linkcode SubscriptionError}. */
  subscribe(session: string, uri: string): void {
    const mine = this.#bySession.get(session) ?? new Set<string>();
    if (mine.has(uri)) return;
    if (this.#options.resolve(uri) === undefined) {
      throw new SubscriptionError("unknown", `Unknown resource "${uri}"`);
    }
    if (mine.size >= this.#maxPerSession || this.#total >= this.#maxTotal) {
      throw new SubscriptionError(
        "limit",
        `Too many subscriptions (at most ${this.#maxPerSession} per session)`,
      );
    }
    mine.add(uri);
    this.#bySession.set(session, mine);
    this.#total++;
    let followed = this.#byUri.get(uri);
    if (followed === undefined) {
      followed = { sessions: new Set(), watch: undefined, retry: undefined, failures: 0 };
      this.#byUri.set(uri, followed);
      followed.sessions.add(session);
      this.#open(uri, followed);
    } else followed.sessions.add(session);
  }

  /** Removes `session` from the followers of `uri`. */
  unsubscribe(session: string, uri: string): void {
    const mine = this.#bySession.get(session);
    if (!mine?.delete(uri)) return;
    if (mine.size === 0) this.#bySession.delete(session);
    this.#total--;
    const followed = this.#byUri.get(uri);
    if (followed === undefined) return;
    followed.sessions.delete(session);
    if (followed.sessions.size === 0) this.#stop(uri, followed);
  }

  /** Forgets every subscription of a session (it ended). */
  dropSession(session: string): void {
    for (const uri of [...(this.#bySession.get(session) ?? [])]) this.unsubscribe(session, uri);
  }

  /** Cancels every watch. */
  close(): void {
    this.#closed = true;
    for (const [uri, followed] of this.#byUri) this.#stop(uri, followed);
    this.#bySession.clear();
    this.#total = 0;
  }

  #open(uri: string, followed: Followed): void {
    if (this.#closed || this.#byUri.get(uri) !== followed) return;
    const service = this.#options.resolve(uri);
    const watch = service === undefined ? undefined : this.#options.rpc.watchResource(
      service,
      uri,
      () => {
        followed.failures = 0;
        this.#options.onUpdated(uri, followed.sessions);
      },
    );
    followed.watch = watch;
    const ended = watch?.ended ?? Promise.resolve(new Error(`No service serves "${uri}" now`));
    void ended.then((error) => {
      if (followed.watch !== watch) return;
      followed.watch = undefined;
      if (this.#closed || this.#byUri.get(uri) !== followed) return;
      const delay = Math.min(this.#retry.max, this.#retry.first * 2 ** followed.failures);
      followed.failures++;
      this.#options.logger.debug("Resource watch ended; opening it again", {
        uri,
        instance: watch?.instance,
        error: error?.message,
        retryMs: delay,
      });
      followed.retry = setTimeout(() => {
        followed.retry = undefined;
        this.#open(uri, followed);
        if (followed.watch !== undefined) this.#options.onUpdated(uri, followed.sessions);
      }, delay);
    });
  }

  #stop(uri: string, followed: Followed): void {
    this.#byUri.delete(uri);
    clearTimeout(followed.retry);
    const watch = followed.watch;
    followed.watch = undefined;
    watch?.cancel();
  }
}
