/**
 * Follows one Consul HTTP endpoint with blocking queries and reports every change of its answer,
 * through the shared {@linkcode ConsulClient} (token, timeouts, abort). Why not `npm:consul`'s watch
 * is said in `client.ts`.
 */
import { backoffDelay } from "../backoff.ts";
import { delay } from "../delay.ts";
import type { Logger } from "../logger.ts";
import { SILENT_LOGGER } from "../logger.ts";
import type { ConsulClient } from "./client.ts";

/** Options of {@linkcode ConsulWatch}. */
export interface ConsulWatchOptions<T> {
  /** The Consul agent and token. */
  consul: ConsulClient;
  /** Extra query parameters, e.g. `{ passing: "" }`. */
  query?: Record<string, string>;
  /**
   * Read from the leader only (`default`), or from whichever server is asked (`stale`, the
   * default). Discovery wants `stale`: a follower answers from its own copy of the log, which
   * trails the leader by milliseconds, while a `default` read must be forwarded to the leader. When
   * the leader's node is lost, those fail until a new one is elected, and a follower forwarding to
   * it was seen answering "rpc error making call: EOF" for over 30 s (Consul 1.8, 3 servers).
   */
  consistency?: "stale" | "default";
  /** Turns the JSON body into the value listeners get; throw to reject a body. */
  parse?: (body: unknown) => T;
  /** How long Consul may hold a blocking query; default 30 s. */
  waitSeconds?: number;
  /** Least time between two requests; default 50 ms. */
  minIntervalMs?: number;
  /** First delay after an error; default 100 ms. */
  baseBackoffMs?: number;
  /** Longest delay after errors in a row; default 5 s. */
  maxBackoffMs?: number;
  /** Source of numbers in [0, 1) for the backoff jitter. */
  random?: () => number;
  logger?: Logger;
  /**
   * The body to take when Consul answers 404 (a KV prefix with no keys, e.g. `[]`). Consul still
   * sends an index with such an answer, so the watch keeps blocking. Unset: 404 is an error.
   */
  notFoundBody?: unknown;
}

/** Called with the new value and its Consul index. */
export type ConsulWatchListener<T> = (value: T, index: number) => void;

/** The result of one blocking query. */
interface QueryResult {
  index: number;
  text: string;
}

/**
 * Follows `path` (e.g. `/v1/health/service/agent-echo`) until closed. Listeners are called when the
 * body changes, not merely the index, so a consumer never sees the same answer twice in a row.
 * After errors it keeps the last value and retries with exponential backoff and jitter.
 */
export class ConsulWatch<T = unknown> {
  readonly #path: string;
  readonly #consul: ConsulClient;
  readonly #query: Record<string, string>;
  readonly #parse: (body: unknown) => T;
  readonly #waitSeconds: number;
  readonly #minIntervalMs: number;
  readonly #baseBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #random: () => number;
  readonly #logger: Logger;
  readonly #notFoundText: string | undefined;
  readonly #listeners = new Set<ConsulWatchListener<T>>();
  readonly #abort = new AbortController();
  readonly #ready: Promise<T>;
  #resolveReady!: (value: T) => void;
  #rejectReady!: (error: unknown) => void;
  #loop: Promise<void> | undefined;
  #index = 0;
  #text: string | undefined;
  #value: T | undefined;
  #hasValue = false;
  #failures = 0;
  #lastError: unknown;

  constructor(path: string, options: ConsulWatchOptions<T>) {
    this.#path = path.startsWith("/") ? path : `/${path}`;
    this.#consul = options.consul;
    this.#query = (options.consistency ?? "stale") === "stale"
      ? { ...options.query, stale: "" }
      : { ...options.query };
    this.#parse = options.parse ?? ((body) => body as T);
    this.#waitSeconds = options.waitSeconds ?? 30;
    this.#minIntervalMs = options.minIntervalMs ?? 50;
    this.#baseBackoffMs = options.baseBackoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.#random = options.random ?? Math.random;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#notFoundText = options.notFoundBody === undefined
      ? undefined
      : JSON.stringify(options.notFoundBody);
    this.#ready = new Promise<T>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A watch that is closed before anyone awaits ready() must not cause an unhandled rejection.
    this.#ready.catch(() => {});
  }

  /** The URL this watch follows, without the blocking parameters. */
  get url(): string {
    return this.#url(undefined);
  }

  /** The last value, or `undefined` before the first answer. */
  get value(): T | undefined {
    return this.#value;
  }

  /** Whether Consul has answered at least once. */
  get hasValue(): boolean {
    return this.#hasValue;
  }

  /** The Consul index of the last answer; 0 before the first one or after a reset. */
  get index(): number {
    return this.#index;
  }

  /** Whether the last request failed (Consul unreachable or answering errors). */
  get failing(): boolean {
    return this.#failures > 0;
  }

  /** Starts following; calling it again does nothing. */
  start(): void {
    if (this.#loop || this.#abort.signal.aborted) return;
    this.#loop = this.#run();
  }

  /** Resolves with the first value; rejects after `timeoutMs` or when closed first. */
  ready(timeoutMs?: number): Promise<T> {
    if (this.#hasValue || timeoutMs === undefined) return this.#ready;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const reason = this.#lastError === undefined ? "no answer yet" : describe(this.#lastError);
        reject(
          new Error(`Cannot read "${this.url}" from Consul within ${timeoutMs} ms: ${reason}`),
        );
      }, timeoutMs);
    });
    return Promise.race([this.#ready, timeout]).finally(() => clearTimeout(timer));
  }

  /** Adds a listener of changes; returns a function that removes it. */
  onChange(listener: ConsulWatchListener<T>): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops following: aborts the request in flight and waits for the loop to end. */
  async close(): Promise<void> {
    if (!this.#abort.signal.aborted) {
      this.#abort.abort();
      this.#rejectReady(new Error(`Watch of "${this.url}" was closed`));
    }
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let lastStart = -Infinity;
    while (!signal.aborted) {
      await delay(lastStart + this.#minIntervalMs - performance.now(), { signal });
      if (signal.aborted) return;
      lastStart = performance.now();
      try {
        const result = await this.#request(signal);
        this.#accept(result);
      } catch (error) {
        if (signal.aborted) return;
        this.#lastError = error;
        const retryMs = backoffDelay(this.#failures, {
          baseMs: this.#baseBackoffMs,
          maxMs: this.#maxBackoffMs,
          jitter: 0.5,
          random: this.#random,
        });
        const fields = { url: this.url, error: describe(error), retryMs: Math.round(retryMs) };
        if (this.#failures === 0) this.#logger.warn("Consul watch failed", fields);
        else this.#logger.debug("Consul watch failed again", fields);
        this.#failures += 1;
        await delay(retryMs, { signal });
      }
    }
  }

  async #request(signal: AbortSignal): Promise<QueryResult> {
    const answer = await this.#consul.blockingGet(this.#path, {
      index: this.#index,
      waitSeconds: this.#waitSeconds,
      query: this.#query,
      signal,
    });
    let text = answer.text;
    if (answer.status === 404 && this.#notFoundText !== undefined) text = this.#notFoundText;
    else if (answer.status < 200 || answer.status > 299) {
      throw new Error(`HTTP ${answer.status}: ${text.trim().slice(0, 200)}`);
    }
    return { index: answer.index, text };
  }

  #accept(result: QueryResult): void {
    const value = this.#parse(JSON.parse(result.text));
    if (this.#failures > 0) this.#logger.info("Consul watch recovered", { url: this.url });
    this.#failures = 0;
    this.#lastError = undefined;
    // Consul's rules for blocking queries: an index below 1 is sent back as 1, since 0 never blocks;
    // one that goes backwards (Consul restarted, state lost) restarts from a plain read.
    const index = Math.max(1, result.index);
    this.#index = index < this.#index ? 0 : index;
    if (this.#hasValue && result.text === this.#text) return;
    this.#text = result.text;
    this.#value = value;
    const first = !this.#hasValue;
    this.#hasValue = true;
    if (first) this.#resolveReady(value);
    for (const listener of [...this.#listeners]) {
      try {
        listener(value, result.index);
      } catch (error) {
        this.#logger.error("Consul watch listener failed", { url: this.url, error });
      }
    }
  }

  #url(index: number | undefined): string {
    const query: Record<string, string> = { ...this.#query };
    if (index !== undefined) {
      query.index = String(index);
      query.wait = `${this.#waitSeconds}s`;
    }
    return this.#consul.url(this.#path, query);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
