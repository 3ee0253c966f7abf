/**
 * Follows one Consul HTTP endpoint with blocking queries and reports every change of its answer.
 *
 * This uses `fetch` rather than the npm `consul` package's `watch`: that watch does not reset the
 * index when it goes backwards or falls below 1, has no minimum interval between requests, and its
 * in-flight request cannot be aborted through an `AbortSignal`, so a test could not close it without
 * leaking an op. `fetch` gives all of that in a few lines.
 */
import { backoffDelay } from "./ejection.ts";
import type { Logger } from "./logger.ts";
import { SILENT_LOGGER } from "./logger.ts";

/** Options of {@linkcode ConsulWatch}. */
export interface ConsulWatchOptions<T> {
  /** Base URL of the Consul HTTP API, e.g. `http://127.0.0.1:8500`. */
  consulUrl: string;
  /** Extra query parameters, e.g. `{ passing: "" }` or `{ stale: "" }`. */
  query?: Record<string, string>;
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
  readonly #consulUrl: string;
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
    this.#consulUrl = options.consulUrl.replace(/\/+$/, "");
    this.#query = options.query ?? {};
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
      await sleep(lastStart + this.#minIntervalMs - performance.now(), signal);
      if (signal.aborted) return;
      lastStart = performance.now();
      try {
        const result = await this.#request(signal);
        this.#accept(result);
      } catch (error) {
        if (signal.aborted) return;
        this.#lastError = error;
        const delay = backoffDelay(this.#failures, {
          baseMs: this.#baseBackoffMs,
          maxMs: this.#maxBackoffMs,
          jitter: 0.5,
          random: this.#random,
        });
        const fields = { url: this.url, error: describe(error), retryMs: Math.round(delay) };
        if (this.#failures === 0) this.#logger.warn("Consul watch failed", fields);
        else this.#logger.debug("Consul watch failed again", fields);
        this.#failures += 1;
        await sleep(delay, signal);
      }
    }
  }

  async #request(signal: AbortSignal): Promise<QueryResult> {
    const blocking = this.#index > 0;
    const url = this.#url(blocking ? this.#index : undefined);
    // Consul holds a query up to wait plus wait/16 of jitter; a request that outlives that by far is
    // a hung connection, not a quiet service.
    const limitMs = blocking ? this.#waitSeconds * 1_000 * (17 / 16) + 5_000 : 10_000;
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new Error(`no answer within ${Math.round(limitMs)} ms`)),
      limitMs,
    );
    try {
      const response = await fetch(url, { signal: AbortSignal.any([signal, timeout.signal]) });
      let text = await response.text();
      if (response.status === 404 && this.#notFoundText !== undefined) text = this.#notFoundText;
      else if (!response.ok) {
        throw new Error(`HTTP ${response.status}: ${text.trim().slice(0, 200)}`);
      }
      const index = Number(response.headers.get("X-Consul-Index") ?? "0");
      return { index: Number.isFinite(index) ? index : 0, text };
    } catch (error) {
      if (timeout.signal.aborted) throw timeout.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
    }
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
    const url = new URL(this.#path, this.#consulUrl + "/");
    for (const [key, value] of Object.entries(this.#query)) url.searchParams.set(key, value);
    if (index !== undefined) {
      url.searchParams.set("index", String(index));
      url.searchParams.set("wait", `${this.#waitSeconds}s`);
    }
    // Consul takes flags such as `passing` without a value.
    return url.href.replace(/=(?=&|$)/g, "");
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
