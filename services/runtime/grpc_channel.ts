/**
 * A gRPC client channel to one address: unary and server-streaming calls over one reused HTTP/2
 * connection ({@linkcode Http2Session}), reconnecting with backoff. It replaces grpc-js on the hot
 * path, which on Deno's `node:http2` costs several times the CPU per call.
 *
 * Call semantics follow grpc-js, down to the wording of status details; whether a failed call
 * reached the server is not read from that wording but carried as {@linkcode GrpcCallError}'s
 * `delivery`:
 * deadlines (sent as `grpc-timeout`, enforced here too: DEADLINE_EXCEEDED "Deadline exceeded"),
 * cancellation by an `AbortSignal` (RST_STREAM CANCEL, CANCELLED "Cancelled on client"), the status
 * and message from trailers or a trailers-only answer, RST_STREAM codes ("Stream refused by server",
 * "Call cancelled"), a lost connection ("Connection dropped", "read ECONNRESET") and a stream the
 * server never saw ("Failed to start HTTP/2 stream …").
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { HeaderField } from "./hpack.ts";
import {
  type Http2Request,
  Http2Session,
  type Http2Stream,
  type StreamHandler,
  type StreamLoss,
} from "./http2_session.ts";

/** Connectivity of a channel, as grpc-js names its states. */
export type ChannelState = "idle" | "connecting" | "ready" | "transient-failure" | "shutdown";

/**
 * How far a failed call got, which decides whether another instance may take it:
 * - `not-sent`: the server never saw it (no connection, a stream refused or never opened, a
 *   GOAWAY's unprocessed stream): safe to send anywhere;
 * - `sent-unanswered`: it was sent and the connection broke (or the server reset the stream with
 *   CANCEL) before an answer: the server may have acted on it;
 * - `answered`: the server answered with a status, or the call ended on this side (deadline,
 *   cancellation) or on a protocol error: final.
 */
export type CallDelivery = "not-sent" | "sent-unanswered" | "answered";

/** Options of {@linkcode GrpcCallError}. */
export interface GrpcCallErrorOptions {
  /** The trailers' other fields. */
  metadata?: Readonly<Record<string, string>>;
  /** How far the call got; default `answered`. */
  delivery?: CallDelivery;
}

/** A failed call: the gRPC status code, its message, the trailers' other fields, its delivery. */
export class GrpcCallError extends Error {
  readonly code: number;
  readonly details: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly delivery: CallDelivery;

  constructor(code: number, details: string, options: GrpcCallErrorOptions = {}) {
    super(`${code} ${GrpcStatus[code] ?? "UNKNOWN"}: ${details}`);
    this.name = "GrpcCallError";
    this.code = code;
    this.details = details;
    this.metadata = options.metadata ?? {};
    this.delivery = options.delivery ?? "answered";
  }
}

const NOT_SENT = { delivery: "not-sent" } as const;
const SENT_UNANSWERED = { delivery: "sent-unanswered" } as const;

/** Options of {@linkcode GrpcChannel}. */
export interface GrpcChannelOptions {
  /** First and longest wait before another connection attempt after one failed; 200 ms, 5 s. */
  reconnectBackoffMs?: { initial: number; max: number };
  /** Time allowed for TCP connect and the HTTP/2 handshake; 20 s. */
  connectTimeoutMs?: number;
  /** Largest message accepted; 4 MiB, as grpc-js. */
  maxReceiveMessageBytes?: number;
  /** Source of numbers in [0, 1) for backoff jitter. */
  random?: () => number;
  /** HTTP/2 keepalive: PING after this long without a frame while calls are open; 2 s. */
  keepaliveMs?: number;
  /** A connection whose PING is unanswered this long is lost, its calls too; 4 s. */
  keepaliveTimeoutMs?: number;
}

/** Options of one call. */
export interface GrpcCallOptions {
  /** Absolute deadline, in `Date.now()` milliseconds. */
  deadline?: number;
  /** Aborting cancels the call. */
  signal?: AbortSignal;
  /** Request metadata (lower-case ASCII names and values). */
  metadata?: Readonly<Record<string, string>>;
}

/** Options of a server-streaming call. */
export interface GrpcStreamOptions extends GrpcCallOptions {
  /** Called with every message, in order, before the call resolves. */
  onMessage(message: Uint8Array): void;
}

/** Opens a stream for a call: at once when connected, else once a connection is made. */
type StreamOpener = (
  request: Http2Request,
  handler: StreamHandler,
) => Http2Stream | Promise<Http2Stream>;

const BACKOFF_MULTIPLIER = 1.6;
const BACKOFF_JITTER = 0.2;
const DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024;

/** The answer to a non-200 HTTP status without a gRPC status, as grpc-js maps it. */
function httpStatusToGrpc(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** The status of an RST_STREAM from the server, as grpc-js reports it. */
function resetToError(code: number): GrpcCallError {
  switch (code) {
    case 0x7:
      // REFUSED_STREAM: the server did no processing of it (RFC 9113, section 8.7).
      return new GrpcCallError(GrpcStatus.UNAVAILABLE, "Stream refused by server", NOT_SENT);
    case 0x8:
      // CANCEL from the server (a forced shutdown): it may have begun the call.
      return new GrpcCallError(GrpcStatus.CANCELLED, "Call cancelled", SENT_UNANSWERED);
    case 0xb:
      return new GrpcCallError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        "Bandwidth exhausted or memory limit exceeded",
      );
    case 0xc:
      return new GrpcCallError(GrpcStatus.PERMISSION_DENIED, "Protocol not secure enough");
    case 0x2:
      return new GrpcCallError(
        GrpcStatus.INTERNAL,
        `Received RST_STREAM with code ${code} (Internal server error)`,
      );
    default:
      return new GrpcCallError(GrpcStatus.INTERNAL, `Received RST_STREAM with code ${code}`);
  }
}

/** A stream that ended (END_STREAM or RST_STREAM NO_ERROR) without trailers, as grpc-js reports it. */
function endedWithoutStatus(): GrpcCallError {
  return new GrpcCallError(
    GrpcStatus.INTERNAL,
    "Received RST_STREAM with code 0 (Call ended without gRPC status)",
  );
}

/** `grpc-timeout`: at most 8 digits, in milliseconds while they fit. */
function timeoutHeader(milliseconds: number): string {
  const ms = Math.max(1, Math.ceil(milliseconds));
  return ms < 100_000_000 ? `${ms}m` : `${Math.ceil(ms / 1000)}S`;
}

function decodeMessage(text: string): string {
  try {
    return decodeURI(text);
  } catch {
    return text;
  }
}

/** One call in flight: gathers its answer from the stream and settles once. */
class Call implements StreamHandler {
  readonly #open: StreamOpener;
  readonly #onMessage: ((message: Uint8Array) => void) | undefined;
  readonly #maxMessage: number;
  readonly #signal: AbortSignal | undefined;
  #resolve: (message: Uint8Array | undefined) => void = () => {};
  #reject: (error: unknown) => void = () => {};
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stream: Http2Stream | undefined;
  #settled = false;
  #httpStatus = 0;
  #headersSeen = false;
  /** Received bytes not yet forming a whole message. */
  #buffer: Uint8Array | undefined;
  #message: Uint8Array | undefined;
  #messages = 0;

  constructor(
    open: StreamOpener,
    onMessage: ((message: Uint8Array) => void) | undefined,
    maxMessage: number,
    signal: AbortSignal | undefined,
  ) {
    this.#open = open;
    this.#onMessage = onMessage;
    this.#maxMessage = maxMessage;
    this.#signal = signal;
  }

  /** Settles with the single message of a unary call, or `undefined` for a stream. */
  start(request: Http2Request & { headers: HeaderField[] }, deadline: number | undefined): Promise<
    Uint8Array | undefined
  > {
    const promise = new Promise<Uint8Array | undefined>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const signal = this.#signal;
    if (signal?.aborted) {
      this.#fail(new GrpcCallError(GrpcStatus.CANCELLED, "Cancelled on client", NOT_SENT));
      return promise;
    }
    if (deadline !== undefined) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        this.#fail(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded", NOT_SENT));
        return promise;
      }
      request.headers.push(["grpc-timeout", timeoutHeader(remaining)]);
      this.#timer = setTimeout(() => this.#deadlineReached(), remaining);
    }
    signal?.addEventListener("abort", this, { once: true });
    const opened = this.#open(request, this);
    if (!(opened instanceof Promise)) this.#stream = opened;
    else {
      opened.then(
        (stream) => {
          if (this.#settled) stream.cancel();
          else this.#stream = stream;
        },
        (error) => this.#fail(error),
      );
    }
    return promise;
  }

  /** The abort listener (an object, so no closure is made per call). */
  handleEvent(): void {
    this.#cancel(new GrpcCallError(GrpcStatus.CANCELLED, "Cancelled on client"));
  }

  #deadlineReached(): void {
    this.#timer = undefined;
    this.#cancel(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded"));
  }

  #cancel(error: GrpcCallError): void {
    if (this.#settled) return;
    this.#stream?.cancel();
    this.#fail(error);
  }

  onHeaders(fields: HeaderField[], endStream: boolean): void {
    if (!this.#headersSeen) {
      this.#headersSeen = true;
      let grpcStatusSeen = false;
      for (const [name, value] of fields) {
        if (name === ":status") this.#httpStatus = Number(value);
        else if (name === "grpc-status") grpcStatusSeen = true;
      }
      // Without END_STREAM these are the response headers; a gRPC status here means trailers-only.
      if (!endStream) {
        if (grpcStatusSeen) this.#finish(fields);
        return;
      }
    }
    this.#finish(fields);
  }

  onData(payload: Uint8Array, endStream: boolean): void {
    if (this.#settled) return;
    this.#readMessages(payload);
    if (endStream && !this.#settled) {
      this.#fail(this.#httpStatus !== 200 ? this.#httpError() : endedWithoutStatus());
    }
  }

  onReset(code: number): void {
    if (this.#settled) return;
    if (code === 0 && this.#httpStatus !== 0 && this.#httpStatus !== 200) {
      return this.#fail(this.#httpError());
    }
    this.#fail(code === 0 ? endedWithoutStatus() : resetToError(code));
  }

  onLost(loss: StreamLoss, reason: string): void {
    if (this.#settled) return;
    if (loss === "dropped") {
      this.#fail(new GrpcCallError(GrpcStatus.UNAVAILABLE, reason, SENT_UNANSWERED));
    } else if (reason === "Stream refused by server") {
      this.#fail(new GrpcCallError(GrpcStatus.UNAVAILABLE, reason, NOT_SENT));
    } else {
      this.#fail(
        new GrpcCallError(
          GrpcStatus.INTERNAL,
          `Failed to start HTTP/2 stream with error ${reason}`,
          NOT_SENT,
        ),
      );
    }
  }

  #httpError(): GrpcCallError {
    return new GrpcCallError(
      httpStatusToGrpc(this.#httpStatus),
      `Received HTTP status code ${this.#httpStatus}`,
    );
  }

  /** Splits DATA into length-prefixed messages (1 byte flags, 4 bytes length, the message). */
  #readMessages(payload: Uint8Array): void {
    let data = payload;
    if (this.#buffer !== undefined) {
      const joined = new Uint8Array(this.#buffer.length + payload.length);
      joined.set(this.#buffer);
      joined.set(payload, this.#buffer.length);
      data = joined;
      this.#buffer = undefined;
    }
    let offset = 0;
    while (data.length - offset >= 5) {
      if (data[offset] !== 0) {
        return this.#cancel(
          new GrpcCallError(
            GrpcStatus.INTERNAL,
            "Received a compressed message, none was asked for",
          ),
        );
      }
      const length = ((data[offset + 1] << 24) >>> 0) + (data[offset + 2] << 16) +
        (data[offset + 3] << 8) + data[offset + 4];
      if (length > this.#maxMessage) {
        return this.#cancel(
          new GrpcCallError(
            GrpcStatus.RESOURCE_EXHAUSTED,
            `Received message larger than max (${length} vs ${this.#maxMessage})`,
          ),
        );
      }
      if (data.length - offset - 5 < length) break;
      // A copy: `payload` is the connection's read buffer.
      this.#deliver(data.slice(offset + 5, offset + 5 + length));
      if (this.#settled) return;
      offset += 5 + length;
    }
    if (offset < data.length) this.#buffer = data.slice(offset);
  }

  #deliver(message: Uint8Array): void {
    this.#messages++;
    if (this.#onMessage === undefined) {
      if (this.#messages > 1) {
        return this.#cancel(
          new GrpcCallError(GrpcStatus.UNIMPLEMENTED, "Too many responses received"),
        );
      }
      this.#message = message;
      return;
    }
    try {
      this.#onMessage(message);
    } catch (error) {
      this.#stream?.cancel();
      this.#fail(error);
    }
  }

  /** Settles from the fields that end the call (trailers, or trailers-only headers). */
  #finish(fields: HeaderField[]): void {
    if (this.#settled) return;
    let code: number | undefined;
    let details = "";
    let metadata: Record<string, string> | undefined;
    for (const [name, value] of fields) {
      if (name === "grpc-status") code = Number(value);
      else if (name === "grpc-message") details = decodeMessage(value);
      else if (name[0] !== ":" && name !== "content-type") (metadata ??= {})[name] = value;
    }
    if (code === undefined) {
      return this.#fail(
        this.#httpStatus !== 200 && this.#httpStatus !== 0
          ? this.#httpError()
          : new GrpcCallError(GrpcStatus.UNKNOWN, "No status information received", { metadata }),
      );
    }
    if (code !== GrpcStatus.OK) return this.#fail(new GrpcCallError(code, details, { metadata }));
    if (this.#onMessage !== undefined) return this.#succeed(undefined);
    if (this.#message === undefined) {
      return this.#fail(new GrpcCallError(GrpcStatus.UNIMPLEMENTED, "No message received"));
    }
    this.#succeed(this.#message);
  }

  #succeed(message: Uint8Array | undefined): void {
    this.#settle();
    this.#resolve(message);
  }

  #fail(error: unknown): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(error);
  }

  #settle(): void {
    this.#settled = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#signal?.removeEventListener("abort", this);
  }
}

interface ReadyWaiter {
  until: number;
  resolve: () => void;
  reject: (error: GrpcCallError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A gRPC channel to one `hostname:port`. */
export class GrpcChannel {
  readonly #hostname: string;
  readonly #port: number;
  readonly #authority: string;
  readonly #backoff: { initial: number; max: number };
  readonly #connectTimeoutMs: number;
  readonly #maxMessage: number;
  readonly #random: () => number;
  readonly #keepalive: { keepaliveMs?: number; keepaliveTimeoutMs?: number };
  #state: ChannelState = "idle";
  #session: Http2Session | undefined;
  #connecting: Promise<Http2Session> | undefined;
  /** Sessions that take no new streams but still carry calls. */
  readonly #retired = new Set<Http2Session>();
  #nextBackoffMs: number;
  #retryAt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #lastError = "";
  readonly #waiters = new Set<ReadyWaiter>();

  constructor(hostname: string, port: number, options: GrpcChannelOptions = {}) {
    this.#hostname = hostname;
    this.#port = port;
    this.#authority = hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
    this.#backoff = options.reconnectBackoffMs ?? { initial: 200, max: 5_000 };
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
    this.#maxMessage = options.maxReceiveMessageBytes ?? DEFAULT_MAX_MESSAGE;
    this.#random = options.random ?? Math.random;
    this.#keepalive = {
      keepaliveMs: options.keepaliveMs,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs,
    };
    this.#nextBackoffMs = this.#backoff.initial;
  }

  /** The connectivity state now; a connection that takes no new streams counts as idle. */
  get state(): ChannelState {
    if (this.#state === "ready" && !this.#session?.available) return "idle";
    return this.#state;
  }

  /**
   * Resolves once connected, connecting if need be. Rejects with UNAVAILABLE when `timeoutMs`
   * passes first, or when a connection attempt failed and the next one would come too late.
   */
  ready(timeoutMs: number): Promise<void> {
    if (this.#session?.available) return Promise.resolve();
    if (this.#state === "shutdown") return Promise.reject(this.#shutdownError());
    return new Promise((resolve, reject) => {
      const until = Date.now() + timeoutMs;
      const waiter: ReadyWaiter = {
        until,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(
            new GrpcCallError(
              GrpcStatus.UNAVAILABLE,
              `No connection established within ${timeoutMs} ms`,
              NOT_SENT,
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
      if (this.#state === "transient-failure" && this.#retryAt > until) {
        return this.#releaseWaiter(waiter, this.#connectError());
      }
      if (this.#state === "transient-failure") this.#scheduleRetry();
      else void this.#connect().catch(() => {});
    });
  }

  /** A unary call: resolves with the single answer message. */
  async unary(
    path: string,
    message: Uint8Array,
    options: GrpcCallOptions = {},
  ): Promise<Uint8Array> {
    const call = new Call(this.#openStream, undefined, this.#maxMessage, options.signal);
    return (await call.start(this.#request(path, message, options), options.deadline))!;
  }

  /** A server-streaming call: passes every message to `onMessage`, resolves at status OK. */
  async serverStream(path: string, message: Uint8Array, options: GrpcStreamOptions): Promise<void> {
    const call = new Call(this.#openStream, options.onMessage, this.#maxMessage, options.signal);
    await call.start(this.#request(path, message, options), options.deadline);
  }

  /**
   * Stops new calls; calls in flight finish on their connection, which then closes (as grpc-js
   * `close()`).
   */
  close(): void {
    if (this.#state === "shutdown") return;
    this.#state = "shutdown";
    clearTimeout(this.#retryTimer);
    for (const waiter of [...this.#waiters]) this.#releaseWaiter(waiter, this.#shutdownError());
    this.#session?.closeWhenIdle();
    this.#session = undefined;
    for (const session of this.#retired) session.closeWhenIdle();
  }

  /** The {@linkcode StreamOpener} of this channel's calls. */
  readonly #openStream: StreamOpener = (request, handler) => {
    const session = this.#session;
    if (session !== undefined && session.available) return session.request(request, handler);
    if (this.#state === "shutdown") return Promise.reject(this.#shutdownError());
    if (this.#state === "transient-failure" && Date.now() < this.#retryAt) {
      return Promise.reject(this.#connectError());
    }
    return this.#connect().then((connected) => connected.request(request, handler));
  };

  #request(
    path: string,
    message: Uint8Array,
    options: GrpcCallOptions,
  ): Http2Request & { headers: HeaderField[] } {
    const headers: HeaderField[] = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      [":authority", this.#authority],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ];
    if (options.metadata) {
      for (const [name, value] of Object.entries(options.metadata)) headers.push([name, value]);
    }
    return { headers, body: frameMessage(message) };
  }

  #connect(): Promise<Http2Session> {
    if (this.#connecting) return this.#connecting;
    if (this.#state === "shutdown") return Promise.reject(this.#shutdownError());
    this.#state = "connecting";
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const attempt = Http2Session.connect(this.#hostname, this.#port, {
      timeoutMs: this.#connectTimeoutMs,
      onClose: (session) => this.#sessionClosed(session),
      ...this.#keepalive,
    }).then(
      (session) => {
        this.#connecting = undefined;
        if (this.#state === "shutdown") {
          session.closeWhenIdle();
          throw this.#shutdownError();
        }
        if (this.#session !== undefined) this.#retired.add(this.#session);
        this.#session = session;
        this.#state = "ready";
        this.#nextBackoffMs = this.#backoff.initial;
        for (const waiter of [...this.#waiters]) this.#releaseWaiter(waiter);
        return session;
      },
      (error: Error) => {
        this.#connecting = undefined;
        this.#lastError = `Error: ${error.message}`;
        if (this.#state === "shutdown") throw this.#shutdownError();
        this.#state = "transient-failure";
        const jitter = 1 + BACKOFF_JITTER * (this.#random() * 2 - 1);
        this.#retryAt = Date.now() + this.#nextBackoffMs * jitter;
        this.#nextBackoffMs = Math.min(this.#backoff.max, this.#nextBackoffMs * BACKOFF_MULTIPLIER);
        const failure = this.#connectError();
        for (const waiter of [...this.#waiters]) {
          if (this.#retryAt > waiter.until) this.#releaseWaiter(waiter, failure);
        }
        if (this.#waiters.size > 0) this.#scheduleRetry();
        throw failure;
      },
    );
    this.#connecting = attempt;
    return attempt;
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#connecting) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#waiters.size > 0 && this.#state === "transient-failure") {
        void this.#connect().catch(() => {});
      }
    }, Math.max(0, this.#retryAt - Date.now()));
  }

  #sessionClosed(session: Http2Session): void {
    this.#retired.delete(session);
    if (this.#session === session) {
      this.#session = undefined;
      if (this.#state === "ready") this.#state = "idle";
    }
  }

  #releaseWaiter(waiter: ReadyWaiter, error?: GrpcCallError): void {
    if (!this.#waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve();
  }

  #connectError(): GrpcCallError {
    return new GrpcCallError(
      GrpcStatus.UNAVAILABLE,
      `No connection established. Last error: ${this.#lastError}`,
      NOT_SENT,
    );
  }

  #shutdownError(): GrpcCallError {
    return new GrpcCallError(GrpcStatus.UNAVAILABLE, "Channel has been shut down", NOT_SENT);
  }
}

/** A message with its gRPC prefix: not compressed, 4-byte big-endian length. */
function frameMessage(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  const length = message.length;
  out[1] = length >>> 24;
  out[2] = (length >>> 16) & 0xff;
  out[3] = (length >>> 8) & 0xff;
  out[4] = length & 0xff;
  out.set(message, 5);
  return out;
}
