/**
 * The one Consul HTTP client of the platform: the ops tool, `lb`, the services and the router all
 * reach Consul through it. It sends the ACL token (`X-Consul-Token`), gives every request a timeout
 * and the caller's abort signal, runs blocking queries and builds every path from URL-encoded parts.
 *
 * It uses `fetch` rather than `npm:consul` (2.0.1), which was taken out of `deno.json`: that client
 * cannot abort a request through an `AbortSignal` (a test could not close a watch without leaking
 * an op), its watch neither resets an index that goes backwards nor waits between requests, and
 * its ACL API is the legacy one (no policies, tokens or service identities, which Consul 1.8's ACL
 * system is built on). A Consul client that takes an `AbortSignal` per call and speaks the ACL
 * policy/token API would change that decision.
 */

/** How the client reaches Consul, as Consul's own tools take it. */
export interface ConsulClientOptions {
  /** ACL token sent with every request; none for an agent without ACLs. */
  token?: string;
  /** Time allowed for a request that is not a blocking query; default 10 s. */
  timeoutMs?: number;
}

/** Options of one request. */
export interface ConsulRequestOptions {
  /** Query parameters; an empty string sends a flag without value (`?passing`). */
  query?: Readonly<Record<string, string>>;
  /** JSON-encoded unless a string. */
  body?: unknown;
  signal?: AbortSignal;
  /** Overrides the client's timeout. */
  timeoutMs?: number;
}

/** The answer of a blocking query. */
export interface ConsulBlockingAnswer {
  /** `X-Consul-Index`, 0 when absent or not a number. */
  readonly index: number;
  readonly status: number;
  readonly text: string;
}

/** Why a request to Consul failed. */
export type ConsulErrorCode = "CONSUL_UNREACHABLE" | "CONSUL_HTTP" | "CONSUL_TIMEOUT";

/** A request Consul did not answer, or answered with an error status. */
export class ConsulError extends Error {
  /** Stable machine-readable code. */
  readonly code: ConsulErrorCode;
  /** HTTP status, 0 when there was no answer. */
  readonly status: number;

  constructor(
    message: string,
    options: { code: ConsulErrorCode; status?: number; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ConsulError";
    this.code = options.code;
    this.status = options.status ?? 0;
  }
}

/**
 * A path of the HTTP API from literal segments and values, each value URL-encoded as one segment:
 * `consulPath("/v1/health/service", name)`. A name such as `../../catalog/nodes` stays one segment.
 */
export function consulPath(base: string, ...segments: readonly string[]): string {
  for (const segment of segments) {
    // URL parsers resolve `.` and `..` (even percent-encoded) as path steps: refuse them.
    if (segment === "" || segment === "." || segment === "..") {
      throw new RangeError(`Cannot use ${JSON.stringify(segment)} as one segment of a Consul path`);
    }
  }
  return [base.replace(/\/+$/, ""), ...segments.map((segment) => encodeURIComponent(segment))]
    .join("/");
}

/** Longest body kept in an error message. */
const ERROR_BODY_CHARS = 200;

/** One Consul agent's HTTP API, with a token. */
export class ConsulClient {
  /** Base URL, e.g. `http://127.0.0.1:8500`, without a final slash. */
  readonly address: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;

  constructor(address: string, options: ConsulClientOptions = {}) {
    const trimmed = address.replace(/\/+$/, "");
    this.address = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
    this.#token = options.token === "" ? undefined : options.token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Whether requests carry a token. */
  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  /** The same agent with another token (the ops tool hands programs theirs). */
  withToken(token: string | undefined): ConsulClient {
    return new ConsulClient(this.address, { token, timeoutMs: this.#timeoutMs });
  }

  /** The full URL of `path` with `query`; flags without value are sent as `?flag`. */
  url(path: string, query: Readonly<Record<string, string>> = {}): string {
    const url = new URL(path.startsWith("/") ? path : `/${path}`, this.address + "/");
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    return url.href.replace(/=(?=&|$)/g, "");
  }

  /** GET `path` and parse JSON; throws {@linkcode ConsulError} on any failure. */
  async get(path: string, options: ConsulRequestOptions = {}): Promise<unknown> {
    const text = (await this.#send("GET", path, options, false))!;
    return parseJson(text, this.url(path));
  }

  /** GET `path`; `undefined` when Consul answers 404 (a missing key or registration). */
  async getOrUndefined(path: string, options: ConsulRequestOptions = {}): Promise<unknown> {
    const text = await this.#send("GET", path, options, true);
    return text === undefined ? undefined : parseJson(text, this.url(path));
  }

  /** PUT `path` with a body; resolves with the answer's text. */
  async put(path: string, options: ConsulRequestOptions = {}): Promise<string> {
    return (await this.#send("PUT", path, options, false))!;
  }

  /** DELETE `path`; resolves with the answer's text. */
  async delete(path: string, options: ConsulRequestOptions = {}): Promise<string> {
    return (await this.#send("DELETE", path, options, false))!;
  }

  /**
   * One blocking query: with `index` > 0 Consul holds the answer until the index moves past it or
   * `waitSeconds` pass. Any status is returned (the caller decides what a 404 means); only a lost
   * connection or a timeout throws.
   */
  async blockingGet(
    path: string,
    options: {
      index: number;
      waitSeconds: number;
      query?: Readonly<Record<string, string>>;
      signal?: AbortSignal;
    },
  ): Promise<ConsulBlockingAnswer> {
    const blocking = options.index > 0;
    const query = { ...options.query };
    if (blocking) {
      query.index = String(options.index);
      query.wait = `${options.waitSeconds}s`;
    }
    // Consul holds a query up to wait plus wait/16 of jitter; a request that outlives that by far is
    // a hung connection, not a quiet service.
    const timeoutMs = blocking ? options.waitSeconds * 1_000 * (17 / 16) + 5_000 : this.#timeoutMs;
    const response = await this.#fetch("GET", path, { query, signal: options.signal, timeoutMs });
    const text = await response.text();
    const index = Number(response.headers.get("X-Consul-Index") ?? "0");
    return { index: Number.isFinite(index) ? index : 0, status: response.status, text };
  }

  async #send(
    method: string,
    path: string,
    options: ConsulRequestOptions,
    notFoundIsUndefined: boolean,
  ): Promise<string | undefined> {
    const response = await this.#fetch(method, path, options);
    const text = await response.text();
    if (response.status === 404 && notFoundIsUndefined) return undefined;
    if (!response.ok) {
      throw new ConsulError(
        `Consul at "${this.address}" answered ${response.status} to ${method} "${path}": ${
          text.trim().slice(0, ERROR_BODY_CHARS)
        }`,
        { code: "CONSUL_HTTP", status: response.status },
      );
    }
    return text;
  }

  async #fetch(method: string, path: string, options: ConsulRequestOptions): Promise<Response> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new Error(`no answer within ${Math.round(timeoutMs)} ms`)),
      timeoutMs,
    );
    const signals = options.signal ? [options.signal, timeout.signal] : [timeout.signal];
    const headers: Record<string, string> = {};
    if (this.#token !== undefined) headers["X-Consul-Token"] = this.#token;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["Content-Type"] = "application/json";
    }
    try {
      return await fetch(this.url(path, options.query), {
        method,
        headers,
        body,
        signal: AbortSignal.any(signals),
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (timeout.signal.aborted) {
        throw new ConsulError(
          `Cannot reach Consul at "${this.address}": ${(timeout.signal.reason as Error).message}`,
          { code: "CONSUL_TIMEOUT", cause: error },
        );
      }
      throw new ConsulError(`Cannot reach Consul at "${this.address}": ${describe(error)}`, {
        code: "CONSUL_UNREACHABLE",
        cause: error,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

function parseJson(text: string, url: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConsulError(`Consul answered "${url}" with a body that is not JSON`, {
      code: "CONSUL_HTTP",
      status: 200,
      cause: error,
    });
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
