/**
 * A small gRPC server (unary, server-streaming and bidirectional methods, no compression) on
 * {@linkcode Http2ServerConnection}, with `grpc.health.v1.Health` (Check and Watch) built in.
 *
 * Why not grpc-js's server: on Deno it runs on `node:http2`, and that cost about 200 µs of CPU per
 * call in the echo agent, more than the call itself; see the README's measurements. What this keeps
 * from it: deadlines (`grpc-timeout`, DEADLINE_EXCEEDED, the handler's signal aborts), cancellation
 * (RST_STREAM aborts the handler's signal), SETTINGS_MAX_CONCURRENT_STREAMS, a message size limit
 * (RESOURCE_EXHAUSTED), graceful drain (no new connections; GOAWAY where clients survive it, see
 * {@linkcode GrpcServerOptions.goawayOnDrain}), and answers
 * in the wire format every gRPC client reads (grpc-js, the platform's own channel, HAProxy's h2).
 * Added: a server-side maximum deadline ({@linkcode GrpcServerOptions.maxDeadlineMs}), so a call
 * without `grpc-timeout`, or with a longer one, cannot hold a stream and its handler forever.
 */
import type { HeaderField } from "./hpack.ts";
import { Http2ServerConnection, type Http2ServerStream } from "./http2_server.ts";

/** gRPC status codes used here. */
export const GrpcStatus = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
});

/** A failure to answer with a gRPC status. */
export class GrpcStatusError extends Error {
  constructor(readonly code: number, readonly details: string) {
    super(details);
    this.name = "GrpcStatusError";
  }
}

/** What a method handler gets besides the request. */
export interface GrpcServerCall {
  /** Aborted when the client cancels, the deadline passes, or the connection ends. */
  readonly signal: AbortSignal;
  /** The request's header fields (metadata), pseudo-headers included. */
  readonly headers: readonly HeaderField[];
}

/** A unary method: request bytes in, response bytes out (or a thrown status). */
export type UnaryMethod = (request: Uint8Array, call: GrpcServerCall) => Promise<Uint8Array>;

/** A server-streaming method: `send` writes one message; resolving ends the call with OK. */
export type ServerStreamMethod = (
  request: Uint8Array,
  call: GrpcServerCall,
  send: (message: Uint8Array) => void,
) => Promise<void>;

/** A bidirectional call as its handler drives it. */
export interface BidiCall extends GrpcServerCall {
  /** Writes one message (the response headers go out with the first). */
  send(message: Uint8Array): void;
  /** Ends the call with OK. */
  end(): void;
  /** Ends the call with the error's status ({@linkcode GrpcStatusError}, else UNKNOWN). */
  fail(error: unknown): void;
}

/** What a bidirectional method does with the caller's messages. */
export interface BidiReceiver {
  onMessage(message: Uint8Array): void;
  /** The caller half-closed its side. */
  onEnd(): void;
}

/** A bidirectional-streaming method: given the call, returns what takes the caller's messages. */
export type BidiStreamMethod = (call: BidiCall) => BidiReceiver;

/** Options of {@linkcode GrpcServer}. */
export interface GrpcServerOptions {
  /** SETTINGS_MAX_CONCURRENT_STREAMS per connection; default {@linkcode DEFAULT_MAX_CONCURRENT_STREAMS}. */
  maxConcurrentStreams?: number;
  /**
   * The longest a call may run, in ms, whatever its `grpc-timeout` (none counts as infinite); it
   * then ends with DEADLINE_EXCEEDED and its handler's signal aborts. Default
   * {@linkcode DEFAULT_MAX_DEADLINE_MS}. Methods added as `longLived` (watches) are exempt.
   */
  maxDeadlineMs?: number;
  /** Largest request message; default 4 MiB, grpc's default. */
  maxMessageBytes?: number;
  /**
   * Whether {@linkcode GrpcServer.drain} sends GOAWAY; default false. grpc-js clients on Deno's
   * `node:http2` can crash on receiving one (denoland/deno#36788, seen here as a segfault of a test
   * process whose client was connected to a draining service); the platform's own channel and
   * HAProxy handle it. Without it, a draining server takes no new connections and serves its
   * connections until they are idle and closed.
   */
  goawayOnDrain?: boolean;
}

/** Options of the `add*` methods of {@linkcode GrpcServer}. */
export interface MethodOptions {
  /**
   * A watch that lives as long as its subscription (health Watch, a resource watch): the server's
   * maximum deadline does not apply, only the caller's `grpc-timeout`. Its cost is bounded by
   * SETTINGS_MAX_CONCURRENT_STREAMS instead.
   */
  longLived?: boolean;
}

/** Default SETTINGS_MAX_CONCURRENT_STREAMS: RFC 9113 §6.5.2 asks for no less than 100. */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 256;
/** Default maximum deadline: five times the router's default call deadline (60 s). */
export const DEFAULT_MAX_DEADLINE_MS = 300_000;
/** Longer timers fire at once (setTimeout's 32-bit limit): such a deadline is no deadline. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When a call ends on its deadline (ms; undefined: never) and what it is told then. */
interface CallDeadline {
  ms: number | undefined;
  message: string;
}

/** Health of a service in `grpc.health.v1`. */
export type HealthStatus = "SERVING" | "NOT_SERVING";

const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const HEALTH_WATCH = "/grpc.health.v1.Health/Watch";
const HEALTH_CODES: Record<HealthStatus | "SERVICE_UNKNOWN", number> = {
  SERVING: 1,
  NOT_SERVING: 2,
  SERVICE_UNKNOWN: 3,
};
const RESPONSE_HEADERS: readonly HeaderField[] = [
  [":status", "200"],
  ["content-type", "application/grpc"],
];
const OK_TRAILERS: readonly HeaderField[] = [["grpc-status", "0"]];
const DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024;
const TIMEOUT_UNITS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/** The server: register methods, listen, drain, close. */
export class GrpcServer {
  readonly #unary = new Map<string, UnaryMethod>();
  readonly #streaming = new Map<string, ServerStreamMethod>();
  readonly #bidi = new Map<string, BidiStreamMethod>();
  readonly #health = new Map<string, HealthStatus>();
  readonly #watchers = new Set<{ service: string; send: (status: number) => void }>();
  readonly #connections = new Set<Http2ServerConnection>();
  readonly #longLived = new Set<string>();
  readonly #maxConcurrentStreams: number;
  readonly #maxDeadlineMs: number;
  readonly #maxMessageBytes: number;
  readonly #goawayOnDrain: boolean;
  #listener: Deno.Listener | undefined;
  #accepting: Promise<void> | undefined;

  constructor(options: GrpcServerOptions = {}) {
    this.#maxConcurrentStreams = options.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS;
    this.#maxDeadlineMs = options.maxDeadlineMs ?? DEFAULT_MAX_DEADLINE_MS;
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
    this.#goawayOnDrain = options.goawayOnDrain ?? false;
    this.#unary.set(HEALTH_CHECK, (request) => Promise.resolve(this.#check(request)));
    this.addServerStream(HEALTH_WATCH, (request, call, send) => this.#watch(request, call, send), {
      longLived: true,
    });
  }

  /** Serves `path` (`/package.Service/Method`) with a unary handler. */
  addUnary(path: string, method: UnaryMethod, options: MethodOptions = {}): void {
    this.#unary.set(path, method);
    this.#setLongLived(path, options);
  }

  /** Serves `path` with a server-streaming handler. */
  addServerStream(path: string, method: ServerStreamMethod, options: MethodOptions = {}): void {
    this.#streaming.set(path, method);
    this.#setLongLived(path, options);
  }

  /** Serves `path` with a bidirectional-streaming handler. */
  addBidiStream(path: string, method: BidiStreamMethod, options: MethodOptions = {}): void {
    this.#bidi.set(path, method);
    this.#setLongLived(path, options);
  }

  #setLongLived(path: string, options: MethodOptions): void {
    if (options.longLived) this.#longLived.add(path);
    else this.#longLived.delete(path);
  }

  /**
   * How long the call on `path` may run (ms; undefined: no limit) and what to say when it ends
   * there, or the error for a malformed `grpc-timeout`.
   */
  #deadline(
    path: string,
    timeout: string | undefined,
  ): CallDeadline | string {
    let asked: number | undefined;
    if (timeout !== undefined) {
      asked = parseTimeout(timeout);
      if (asked === undefined) return `Invalid grpc-timeout "${timeout}"`;
    }
    const cap = this.#longLived.has(path) ? undefined : this.#maxDeadlineMs;
    if (cap !== undefined && (asked === undefined || asked > cap)) {
      return { ms: cap, message: `Deadline exceeded (the server's maximum of ${cap} ms)` };
    }
    return {
      ms: asked !== undefined && asked <= MAX_TIMER_MS ? asked : undefined,
      message: "Deadline exceeded",
    };
  }

  /** Sets the health `grpc.health.v1` reports for `service` (`""`: the whole server). */
  setHealth(service: string, status: HealthStatus): void {
    this.#health.set(service, status);
    for (const watcher of this.#watchers) {
      if (watcher.service === service) watcher.send(HEALTH_CODES[status]);
    }
  }

  /** Calls being answered now, over every connection. */
  get activeCalls(): number {
    let count = 0;
    for (const connection of this.#connections) count += connection.activeStreams;
    return count;
  }

  /** Listens on `hostname:port` (port 0: any free port); resolves with the bound port. */
  listen(port: number, hostname = "0.0.0.0"): number {
    const listener = Deno.listen({ hostname, port, transport: "tcp" });
    this.#listener = listener;
    this.#accepting = this.#accept(listener);
    return (listener.addr as Deno.NetAddr).port;
  }

  /** Stops accepting connections; with `goawayOnDrain`, asks every connection to drain (GOAWAY). */
  drain(): void {
    this.#stopListening();
    if (!this.#goawayOnDrain) return;
    for (const connection of this.#connections) connection.drain();
  }

  /** Closes every connection now (calls in flight are aborted) and stops listening. */
  async close(): Promise<void> {
    this.#stopListening();
    const closing = [...this.#connections].map((connection) => {
      connection.close();
      return connection.closed;
    });
    await Promise.allSettled([...closing, this.#accepting]);
  }

  #stopListening(): void {
    try {
      this.#listener?.close();
    } catch {
      // Closed already.
    }
    this.#listener = undefined;
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) {
        (conn as Deno.TcpConn).setNoDelay(true);
        const connection = new Http2ServerConnection(conn, {
          maxConcurrentStreams: this.#maxConcurrentStreams,
          maxBodyBytes: this.#maxMessageBytes + 5,
          onRequest: (stream) => void this.#serve(stream),
          isStreaming: (headers) => {
            for (const [name, value] of headers) if (name === ":path") return this.#bidi.has(value);
            return false;
          },
          onOversized: (stream) =>
            answerError(
              stream,
              GrpcStatus.RESOURCE_EXHAUSTED,
              `Request larger than ${this.#maxMessageBytes} bytes`,
            ),
          onClose: (closed) => this.#connections.delete(closed),
        });
        this.#connections.add(connection);
      }
    } catch {
      // The listener was closed.
    }
  }

  async #serve(stream: Http2ServerStream): Promise<void> {
    const headers = stream.headers;
    let path = "";
    let method = "";
    let contentType = "";
    let timeout: string | undefined;
    for (const [name, value] of headers) {
      if (name === ":path") path = value;
      else if (name === ":method") method = value;
      else if (name === "content-type") contentType = value;
      else if (name === "grpc-timeout") timeout = value;
    }
    if (method !== "POST" || !contentType.startsWith("application/grpc")) {
      // Not gRPC: an HTTP answer, as grpc-go and grpc-js give (RFC 9113 lets the stream end here).
      stream.end([[":status", method === "POST" ? "415" : "405"]]);
      return;
    }
    const bidi = this.#bidi.get(path);
    if (bidi !== undefined) return this.#serveBidi(stream, bidi, this.#deadline(path, timeout));
    const unary = this.#unary.get(path);
    const streaming = unary === undefined ? this.#streaming.get(path) : undefined;
    if (unary === undefined && streaming === undefined) {
      return answerError(stream, GrpcStatus.UNIMPLEMENTED, `Method not found: ${path}`);
    }
    const request = unframe(stream.body, this.#maxMessageBytes);
    if (typeof request === "string") return answerError(stream, GrpcStatus.INTERNAL, request);
    const controller = new AbortController();
    const abort = () => controller.abort();
    stream.signal.addEventListener("abort", abort, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let expired = false;
    const deadline = this.#deadline(path, timeout);
    if (typeof deadline === "string") {
      stream.signal.removeEventListener("abort", abort);
      return answerError(stream, GrpcStatus.INTERNAL, deadline);
    }
    if (deadline.ms !== undefined) {
      timer = setTimeout(() => {
        expired = true;
        controller.abort();
        answerError(stream, GrpcStatus.DEADLINE_EXCEEDED, deadline.message, started);
      }, deadline.ms);
    }
    const call: GrpcServerCall = { signal: controller.signal, headers };
    let started = false;
    try {
      if (unary !== undefined) {
        const response = await unary(request, call);
        if (expired || stream.signal.aborted) return;
        stream.respond(RESPONSE_HEADERS);
        stream.write(frameMessage(response));
        stream.end(OK_TRAILERS);
      } else {
        await streaming!(request, call, (message) => {
          if (expired || stream.signal.aborted) return;
          if (!started) stream.respond(RESPONSE_HEADERS);
          started = true;
          stream.write(frameMessage(message));
        });
        if (expired || stream.signal.aborted) return;
        if (!started) stream.respond(RESPONSE_HEADERS);
        stream.end(OK_TRAILERS);
      }
    } catch (error) {
      if (expired || stream.signal.aborted) return;
      if (error instanceof GrpcStatusError) {
        answerError(stream, error.code, error.details, started);
      } else {
        const message = (error as Error)?.message ?? String(error);
        answerError(stream, GrpcStatus.UNKNOWN, message, started);
      }
    } finally {
      clearTimeout(timer);
      stream.signal.removeEventListener("abort", abort);
      controller.abort();
    }
  }

  /** A bidirectional call: messages are cut from the DATA as it arrives and handed on. */
  #serveBidi(
    stream: Http2ServerStream,
    method: BidiStreamMethod,
    deadline: CallDeadline | string,
  ): void {
    const controller = new AbortController();
    let responded = false;
    let ended = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      ended = true;
      clearTimeout(timer);
      controller.abort();
    };
    stream.signal.addEventListener("abort", finish, { once: true });
    const fail = (code: number, details: string) => {
      if (ended) return;
      answerError(stream, code, details, responded);
      finish();
    };
    const call: BidiCall = {
      signal: controller.signal,
      headers: stream.headers,
      send: (message) => {
        if (ended) return;
        if (!responded) stream.respond(RESPONSE_HEADERS);
        responded = true;
        stream.write(frameMessage(message));
      },
      end: () => {
        if (ended) return;
        if (!responded) stream.respond(RESPONSE_HEADERS);
        responded = true;
        stream.end(OK_TRAILERS);
        finish();
      },
      fail: (error) => {
        if (error instanceof GrpcStatusError) fail(error.code, error.details);
        else fail(GrpcStatus.UNKNOWN, (error as Error)?.message ?? String(error));
      },
    };
    if (typeof deadline === "string") return fail(GrpcStatus.INTERNAL, deadline);
    if (deadline.ms !== undefined) {
      timer = setTimeout(() => fail(GrpcStatus.DEADLINE_EXCEEDED, deadline.message), deadline.ms);
    }
    let receiver: BidiReceiver;
    try {
      receiver = method(call);
    } catch (error) {
      return call.fail(error);
    }
    const deframer = new Deframer(this.#maxMessageBytes);
    stream.receive({
      onData: (chunk) => {
        if (ended) return;
        const messages = deframer.push(chunk);
        if (typeof messages === "string") return fail(GrpcStatus.RESOURCE_EXHAUSTED, messages);
        for (const message of messages) receiver.onMessage(message);
      },
      onEnd: () => {
        if (ended) return;
        if (deframer.pending) {
          return fail(GrpcStatus.INTERNAL, "The request ended inside a message");
        }
        receiver.onEnd();
      },
    });
  }

  #statusOf(service: string): number {
    const status = this.#health.get(service);
    return status === undefined ? HEALTH_CODES.SERVICE_UNKNOWN : HEALTH_CODES[status];
  }

  #check(request: Uint8Array): Uint8Array {
    const service = decodeHealthRequest(request);
    const status = this.#statusOf(service);
    if (status === HEALTH_CODES.SERVICE_UNKNOWN) {
      throw new GrpcStatusError(GrpcStatus.NOT_FOUND, "NOT_FOUND");
    }
    return encodeHealthResponse(status);
  }

  async #watch(
    request: Uint8Array,
    call: GrpcServerCall,
    send: (message: Uint8Array) => void,
  ): Promise<void> {
    const service = decodeHealthRequest(request);
    let last = this.#statusOf(service);
    send(encodeHealthResponse(last));
    const watcher = {
      service,
      send: (status: number) => {
        if (status === last) return;
        last = status;
        send(encodeHealthResponse(status));
      },
    };
    this.#watchers.add(watcher);
    try {
      await new Promise<void>((resolve) => {
        if (call.signal.aborted) resolve();
        else call.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    } finally {
      this.#watchers.delete(watcher);
    }
  }
}

/** The status in trailers: trailers-only (with `:status`) unless the response headers went out. */
function answerError(
  stream: Http2ServerStream,
  code: number,
  details: string,
  responded = false,
): void {
  const status: HeaderField[] = [
    ["grpc-status", String(code)],
    ["grpc-message", encodeGrpcMessage(details)],
  ];
  stream.end(responded ? status : [...RESPONSE_HEADERS, ...status]);
}

/** Cuts length-prefixed gRPC messages out of a byte stream. */
class Deframer {
  #buffer = new Uint8Array(0);
  constructor(readonly maxBytes: number) {}

  /** Whether a message has begun and not ended. */
  get pending(): boolean {
    return this.#buffer.length > 0;
  }

  /** The messages completed by `chunk`, or why the stream is refused. */
  push(chunk: Uint8Array): Uint8Array[] | string {
    let data = chunk;
    if (this.#buffer.length > 0) {
      data = new Uint8Array(this.#buffer.length + chunk.length);
      data.set(this.#buffer);
      data.set(chunk, this.#buffer.length);
    }
    const messages: Uint8Array[] = [];
    let offset = 0;
    while (data.length - offset >= 5) {
      if (data[offset] !== 0) return "Compressed messages are not supported";
      const length = new DataView(data.buffer, data.byteOffset + offset, 5).getUint32(1);
      if (length > this.maxBytes) return `Message larger than ${this.maxBytes} bytes`;
      if (data.length - offset < 5 + length) break;
      messages.push(data.slice(offset + 5, offset + 5 + length));
      offset += 5 + length;
    }
    this.#buffer = data.slice(offset);
    return messages;
  }
}

/** The one message of a request body, or why it is not one. */
export function unframe(body: Uint8Array, maxBytes: number): Uint8Array | string {
  if (body.length < 5) return "The request has no complete gRPC message";
  if (body[0] !== 0) return "Compressed messages are not supported";
  const length = new DataView(body.buffer, body.byteOffset, 5).getUint32(1);
  if (length > maxBytes) return `Request larger than ${maxBytes} bytes`;
  if (body.length !== 5 + length) return "The request body is not exactly one gRPC message";
  return body.subarray(5);
}

/** A message with its 5-byte gRPC prefix (uncompressed). */
export function frameMessage(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

/** `grpc-timeout` in milliseconds, or `undefined` when malformed. */
export function parseTimeout(text: string): number | undefined {
  const match = /^(\d{1,8})([HMSmun])$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * TIMEOUT_UNITS[match[2]];
}

/** `grpc-message`: percent-encoded outside printable ASCII (gRPC over HTTP/2 spec). */
export function encodeGrpcMessage(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** `HealthCheckRequest.service` (field 1, string); unknown fields are skipped. */
export function decodeHealthRequest(bytes: Uint8Array): string {
  let offset = 0;
  let service = "";
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      if (offset >= bytes.length || shift > 28) {
        throw new GrpcStatusError(GrpcStatus.INTERNAL, "Malformed HealthCheckRequest");
      }
      const byte = bytes[offset++];
      value |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return value >>> 0;
      shift += 7;
    }
  };
  while (offset < bytes.length) {
    const key = varint();
    const wire = key & 7;
    if (wire === 0) varint();
    else if (wire === 2) {
      const length = varint();
      if (offset + length > bytes.length) {
        throw new GrpcStatusError(GrpcStatus.INTERNAL, "Malformed HealthCheckRequest");
      }
      if (key >>> 3 === 1) {
        service = new TextDecoder().decode(bytes.subarray(offset, offset + length));
      }
      offset += length;
    } else if (wire === 1) offset += 8;
    else if (wire === 5) offset += 4;
    else throw new GrpcStatusError(GrpcStatus.INTERNAL, "Malformed HealthCheckRequest");
  }
  return service;
}

/** `HealthCheckResponse { status = 1 }`. */
export function encodeHealthResponse(status: number): Uint8Array {
  return Uint8Array.of(0x08, status);
}
