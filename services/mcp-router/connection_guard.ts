/**
 * The MCP port's HTTP/1.1 server: header and body read timeouts, idle connections, a connection
 * cap, the client's source address, and a signal for a client gone; each request is answered by
 * calling the router's handler in process.
 *
 * Why not `Deno.serve`: it (hyper) has no header read, body read or keep-alive timeout and no
 * option for one, and `node:http`'s `headersTimeout`/`requestTimeout` are not honoured on Deno
 * either (measured on Deno 2.9.6: a connection with half a header block, one with half a body, and
 * an idle one all stayed open past 75 s). A slowloris client could hold every file descriptor.
 * Session 4 put this guard in front of `Deno.serve`, copying every byte over a second loopback
 * connection: that copy was about 40 % of the router's CPU (V8 profile; a unix socket for the
 * second hop did not help). The guard already followed each request's framing, so it now reads
 * each request itself (`request_framing.ts`), builds the `Request`, calls the handler and writes
 * the `Response` (`response_framing.ts`). What would change this: `Deno.serve` gaining read
 * timeouts.
 *
 * - a request's header block must arrive within `headerTimeoutMs` of its first byte (of the
 *   connection, for the first request): else 408 and the connection is closed;
 * - its body within `bodyTimeoutMs` of its head: else 408 and the connection is closed;
 * - a connection with no byte either way for `idleTimeoutMs` is closed (a listening stream's
 *   heartbeats count, so only dead or silent ones go);
 * - at most `maxConnections` are open; others are closed at once.
 *
 * HTTP/1.1 (RFC 9112): requests are answered one at a time in order (pipelined ones wait, read
 * ahead at most `maxHeaderBytes` plus one read); a body is read whole before the handler runs, up
 * to `maxBodyBytes` (the handler reads every body whole anyway); a larger `Content-Length` reaches
 * the handler without its body, which refuses it (413), and the connection is closed after the
 * answer. A chunked body over `maxBodyBytes` is answered 413 here. `Expect: 100-continue` gets its
 * 100 when the body is about to be read. Answers are framed by `Content-Length` when whole (JSON,
 * or any body that ends within 64 KiB), else chunked (event streams; close-delimited for HTTP/1.0)
 * and written with backpressure: the next piece is read from the handler's stream only once the
 * previous one is written. An HTTP/2 preface is refused (nothing sends h2c to the routers; HAProxy
 * speaks HTTP/1.1 to them).
 *
 * The handler is given the client's source address and a signal that aborts when the client's
 * connection closes (also the `Request`'s own signal), so a backend call of a gone client is
 * cancelled. A client that half-closes its side is gone: HTTP clients do not do that to wait for
 * an answer.
 */
import type { Logger } from "../runtime/logger.ts";
import { ChunkedBodyScanner, parseHead, type RequestHead } from "./request_framing.ts";
import { bodiless, errorAnswer, type ResponseFraming, responseHead } from "./response_framing.ts";

/** Answers one request: `peer` is the source address, `connectionClosed` aborts when it goes. */
export type GuardedHandler = (
  request: Request,
  peer: string,
  connectionClosed: AbortSignal,
) => Promise<Response>;

/** Options of {@linkcode ConnectionGuard}. */
export interface ConnectionGuardOptions {
  handler: GuardedHandler;
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  /** Largest body read before the handler runs; default 4 MiB. */
  maxBodyBytes?: number;
  /** Largest header block; default 64 KiB. */
  maxHeaderBytes?: number;
  logger: Logger;
  /** Counts a connection cut by a limit. */
  onCut?(reason: CutReason): void;
  /** The clock; default `Date.now`. */
  now?: () => number;
}

/** Why the guard closed a connection. */
export type CutReason =
  | "header_timeout"
  | "body_timeout"
  | "idle"
  | "max_connections"
  | "malformed";

// Each connection holds one read buffer for its whole life: 1,000 listening streams with 64 KiB
// ones took 128 MiB. Requests are small; a large body takes more reads.
const READ_BUFFER = 4 * 1024;
/** An answer that has not ended within this many bytes is sent chunked. */
const WHOLE_ANSWER_BYTES = 64 * 1024;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");
const EMPTY: Bytes = new Uint8Array(0);
const encoder = new TextEncoder();

type Bytes = Uint8Array<ArrayBuffer>;

/** Guards the connections of one listener; see the module header. */
export class ConnectionGuard {
  readonly #options: ConnectionGuardOptions;
  readonly #now: () => number;
  readonly #open = new Set<GuardedConnection>();
  readonly #tasks = new Set<Promise<void>>();
  #listener: Deno.TcpListener | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #draining = false;

  constructor(options: ConnectionGuardOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#open.size;
  }

  /** Accepts connections from `listener` until {@linkcode stopAccepting} or {@linkcode close}. */
  serve(listener: Deno.TcpListener): void {
    this.#listener = listener;
    const { headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs } = this.#options;
    const period = Math.min(
      1000,
      Math.max(25, Math.min(headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs) / 4),
    );
    this.#sweeper = setInterval(() => this.sweep(), period);
    const accepting = (async () => {
      for (;;) {
        let conn: Deno.TcpConn;
        try {
          conn = await listener.accept();
        } catch {
          return; // The listener was closed.
        }
        if (this.#open.size >= this.#options.maxConnections || this.#draining) {
          this.#options.onCut?.("max_connections");
          conn.close();
          continue;
        }
        const connection = new GuardedConnection(conn, this.#options, this.#now, () => {
          this.#open.delete(connection);
        }, () => this.#draining);
        this.#open.add(connection);
        this.#track(connection.serve());
      }
    })();
    this.#track(accepting);
  }

  /** Closes connections past their deadlines at `nowMs`. */
  sweep(nowMs: number = this.#now()): void {
    const { headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs } = this.#options;
    for (const connection of [...this.#open]) {
      if (
        connection.phase === "head" && connection.headStartedAt !== undefined &&
        nowMs - connection.headStartedAt >= headerTimeoutMs
      ) {
        connection.cut("header_timeout", 408, "Request header block did not arrive in time");
      } else if (
        connection.phase === "body" &&
        nowMs - connection.bodyStartedAt >= bodyTimeoutMs
      ) {
        connection.cut("body_timeout", 408, "Request body did not arrive in time");
      } else if (nowMs - connection.lastActivity >= idleTimeoutMs) {
        connection.cut("idle");
      }
    }
  }

  /** Stops accepting; open connections go on. */
  stopAccepting(): void {
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
  }

  /**
   * Stops accepting, closes connections between requests, and closes each other one once its
   * current answer is written; resolves when none is left.
   */
  async shutdown(): Promise<void> {
    this.#draining = true;
    this.stopAccepting();
    for (const connection of [...this.#open]) connection.closeIfIdle();
    await Promise.allSettled([...this.#tasks]);
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    this.#draining = true;
    this.stopAccepting();
    clearInterval(this.#sweeper);
    for (const connection of [...this.#open]) connection.cut("idle");
    await Promise.allSettled([...this.#tasks]);
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }
}

/** One client connection: its reads, its requests one after another, and its answers. */
class GuardedConnection {
  /** "head": between requests or reading a head; "body": reading a body; "busy": answering. */
  phase: "head" | "body" | "busy" = "head";
  /** When the header block being read began (its first byte), if it has. */
  headStartedAt: number | undefined;
  bodyStartedAt = 0;
  lastActivity: number;

  readonly #conn: Deno.TcpConn;
  readonly #options: ConnectionGuardOptions;
  readonly #now: () => number;
  readonly #onClosed: () => void;
  readonly #draining: () => boolean;
  readonly #peer: string;
  readonly #local: string;
  readonly #scratch = new Uint8Array(READ_BUFFER);
  readonly #readAhead: number;
  /** Bytes read and not yet used; never written into (views of it stay valid). */
  #buffered: Bytes = EMPTY;
  #reading = false;
  #ended = false;
  #wake: (() => void) | undefined;
  /** An answer's head has been written and its body not finished. */
  #writing = false;
  #closed = false;
  #cutting = false;
  /** Aborts when the connection closes while the current request is served. */
  #current: AbortController | undefined;
  /** The current answer's body, cancelled if the connection closes under it. */
  #answer: ReadableStreamDefaultReader<Uint8Array> | undefined;

  constructor(
    conn: Deno.TcpConn,
    options: ConnectionGuardOptions,
    now: () => number,
    onClosed: () => void,
    draining: () => boolean,
  ) {
    this.#conn = conn;
    this.#options = options;
    this.#now = now;
    this.#onClosed = onClosed;
    this.#draining = draining;
    this.lastActivity = now();
    this.headStartedAt = this.lastActivity;
    this.#peer = (conn.remoteAddr as Deno.NetAddr).hostname;
    const local = conn.localAddr as Deno.NetAddr;
    this.#local = local.hostname.includes(":")
      ? `[${local.hostname}]:${local.port}`
      : `${local.hostname}:${local.port}`;
    this.#readAhead = (options.maxHeaderBytes ?? 64 * 1024) + READ_BUFFER;
  }

  /** Closes the connection after writing `status` (when no answer is being written), or at once. */
  cut(reason: CutReason, status?: number, message?: string): void {
    if (this.#closed) return;
    // A cut whose answer is still not written at the next sweep (a client reading nothing) is
    // closed then, and not counted again.
    if (this.#cutting) return this.close();
    this.#cutting = true;
    this.#options.onCut?.(reason);
    if (status !== undefined && !this.#writing) {
      this.#writing = true;
      const answer = encoder.encode(errorAnswer(status, message ?? "", this.#date()));
      // Best effort: a client that reads nothing must not hold the cut up.
      this.#markGone();
      writeAll(this.#conn, answer).catch(() => {}).finally(() => this.close());
      return;
    }
    this.close();
  }

  /** Closes the connection if it waits for a request with nothing of one read. */
  closeIfIdle(): void {
    if (this.phase === "head" && this.#buffered.length === 0 && !this.#writing) this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#markGone();
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    this.#onClosed();
  }

  /** Serves requests until the connection closes. */
  async serve(): Promise<void> {
    try {
      this.#conn.setNoDelay(true);
      while (!this.#closed && await this.#serveOne());
    } catch (error) {
      this.#options.logger.warn("Connection failed", { error: (error as Error).message });
    } finally {
      this.close();
    }
  }

  /** Reads, answers and writes one request; false when the connection must close. */
  async #serveOne(): Promise<boolean> {
    // The first request's header timeout runs from the connection's start (constructor); a later
    // one's from its first byte.
    this.phase = "head";
    if (this.#buffered.length > 0) this.headStartedAt ??= this.#now();
    if (this.#draining() && this.#buffered.length === 0) return false;
    const maxHeaderBytes = this.#options.maxHeaderBytes ?? 64 * 1024;
    let head: RequestHead;
    for (;;) {
      const parsed = parseHead(this.#buffered, maxHeaderBytes);
      if (parsed.kind === "head") {
        head = parsed;
        break;
      }
      if (parsed.kind === "error") {
        this.cut("malformed", parsed.status, parsed.message);
        return false;
      }
      if (!await this.#more()) return false;
    }
    this.#take(head.consumed);
    const maxBodyBytes = this.#options.maxBodyBytes ?? 4 * 1024 * 1024;
    let body: Bytes | null = null;
    // A body left unread (too large for the handler to take) leaves the framing unknown after it.
    let bodyRead = true;
    if (head.body.kind !== "none") {
      this.phase = "body";
      this.bodyStartedAt = this.#now();
      if (head.body.kind === "length" && head.body.length > maxBodyBytes) {
        bodyRead = false;
      } else {
        if (
          head.expectContinue && this.#buffered.length === 0 && !await this.#write("", CONTINUE)
        ) {
          return false;
        }
        const read = head.body.kind === "length"
          ? await this.#readLength(head.body.length)
          : await this.#readChunked(maxBodyBytes);
        if (read === undefined) return false;
        body = read;
      }
    }
    this.phase = "busy";
    const gone = new AbortController();
    this.#current = gone;
    let request: Request;
    try {
      request = new Request(this.#url(head), {
        method: head.method,
        headers: head.fields,
        body: head.method === "GET" || head.method === "HEAD" ? null : body,
        signal: gone.signal,
      });
    } catch {
      // A target or field `Request` refuses (its URL does not parse, say).
      this.cut("malformed", 400, "Malformed request target or header field");
      return false;
    }
    let response: Response;
    try {
      response = await this.#options.handler(request, this.#peer, gone.signal);
    } catch (error) {
      this.#options.logger.error("Request failed", { error: (error as Error).message });
      response = Response.json({
        jsonrpc: "2.0",
        error: { code: -32603, message: "Internal error" },
        id: null,
      }, { status: 500 });
    }
    if (this.#closed) {
      await response.body?.cancel().catch(() => {});
      return false;
    }
    const keepAlive = head.keepAlive && bodyRead && !this.#draining() &&
      !/\bclose\b/i.test(response.headers.get("connection") ?? "");
    const kept = await this.#respond(head, response, keepAlive);
    this.#writing = false;
    this.#current = undefined;
    this.headStartedAt = undefined;
    return kept;
  }

  #url(head: RequestHead): string {
    const { target } = head;
    if (target.charCodeAt(0) === 0x2f) return `http://${head.host || this.#local}${target}`;
    // Asterisk-form (OPTIONS *): the server as a whole, which has no path of its own.
    if (target === "*") return `http://${head.host || this.#local}/*`;
    return target;
  }

  /** Writes `response`; true when the connection stays open for another request. */
  async #respond(head: RequestHead, response: Response, keepAlive: boolean): Promise<boolean> {
    const body = response.body;
    const type = response.headers.get("content-type") ?? "";
    if (body === null || bodiless(head.method, response.status)) {
      await body?.cancel().catch(() => {});
      const framing: ResponseFraming = head.method === "HEAD" || response.status === 204 ||
          response.status === 304
        ? { kind: "none" }
        : { kind: "length", length: 0 };
      return await this.#write(this.#head(response, head, framing, keepAlive), EMPTY) &&
        keepAlive;
    }
    if (type.startsWith("application/json")) {
      // The router's and the SDK's JSON answers are whole strings already (JSON.stringify).
      let bytes: Bytes;
      try {
        bytes = await response.bytes();
      } catch {
        // The handler's body failed before anything was written: the client sees a close.
        return false;
      }
      if (this.#closed) return false;
      const framing = { kind: "length", length: bytes.length } as const;
      return await this.#write(this.#head(response, head, framing, keepAlive), bytes) &&
        keepAlive;
    }
    const reader = body.getReader();
    this.#answer = reader;
    try {
      const parts: Bytes[] = [];
      let size = 0;
      // An event stream is sent as it comes; another body is sent whole if it ends soon.
      if (!type.startsWith("text/event-stream")) {
        while (size < WHOLE_ANSWER_BYTES) {
          const { done, value } = await reader.read();
          if (done) {
            const framing = { kind: "length", length: size } as const;
            return await this.#write(
              this.#head(response, head, framing, keepAlive),
              concat(parts, size),
            ) && keepAlive;
          }
          parts.push(value);
          size += value.length;
        }
      }
      const chunked = !head.http10;
      const framing: ResponseFraming = chunked ? { kind: "chunked" } : { kind: "close" };
      const start = this.#head(response, head, framing, keepAlive && chunked);
      if (!await this.#write(start, chunked ? chunk(concat(parts, size)) : concat(parts, size))) {
        return false;
      }
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (value.length === 0) continue;
        if (!await this.#write("", chunked ? chunk(value) : value)) return false;
      }
      if (!chunked) return false;
      return await this.#write("", LAST_CHUNK) && keepAlive;
    } catch {
      // The handler's stream failed: the answer cannot be completed, so the client must see the
      // connection close rather than a truncated body it could take as whole.
      return false;
    } finally {
      this.#answer = undefined;
      reader.cancel().catch(() => {});
      this.#writing = false;
    }
  }

  #head(
    response: Response,
    request: RequestHead,
    framing: ResponseFraming,
    keepAlive: boolean,
  ): string {
    this.#writing = true;
    return responseHead(response, {
      framing,
      keepAlive,
      http10: request.http10,
      date: this.#date(),
    });
  }

  /** Writes `head` (Latin-1) and `body` in one write; false when the connection is gone. */
  async #write(head: string, body: Bytes): Promise<boolean> {
    if (this.#closed) return false;
    let out = body;
    if (head.length > 0) {
      out = new Uint8Array(head.length + body.length);
      latin1Into(head, out);
      out.set(body, head.length);
    }
    try {
      await writeAll(this.#conn, out);
    } catch {
      this.close();
      return false;
    }
    this.lastActivity = this.#now();
    return true;
  }

  #date(): string {
    return httpDate(this.#now());
  }

  /** Waits for more bytes; false when the connection ended. */
  #more(): Promise<boolean> {
    if (this.#ended || this.#closed) return Promise.resolve(false);
    const arrived = new Promise<boolean>((resolve) => {
      this.#wake = () => resolve(!this.#ended && !this.#closed);
    });
    this.#pump();
    return arrived;
  }

  /** Keeps one read pending while fewer than the read-ahead bytes wait to be used. */
  #pump(): void {
    if (this.#reading || this.#ended || this.#closed) return;
    if (this.#buffered.length >= this.#readAhead && this.#wake === undefined) return;
    this.#reading = true;
    this.#conn.read(this.#scratch).then((n) => this.#arrived(n), () => this.#arrived(null));
  }

  #arrived(n: number | null): void {
    this.#reading = false;
    if (n === null) {
      this.#ended = true;
      // The client went (or half-closed): whatever it asked is cancelled.
      this.close();
    } else {
      const now = this.#now();
      this.lastActivity = now;
      if (this.phase === "head") this.headStartedAt ??= now;
      const fresh = this.#scratch.slice(0, n);
      this.#buffered = this.#buffered.length === 0
        ? fresh
        : concat([this.#buffered, fresh], this.#buffered.length + n);
    }
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    this.#pump();
  }

  #take(n: number): Bytes {
    const taken = this.#buffered.subarray(0, n);
    this.#buffered = n === this.#buffered.length ? EMPTY : this.#buffered.subarray(n);
    this.#pump();
    return taken;
  }

  /** A body of `length` bytes; undefined when the connection ended first. */
  async #readLength(length: number): Promise<Bytes | undefined> {
    if (this.#buffered.length >= length) return this.#take(length);
    const body = new Uint8Array(length);
    let at = 0;
    for (;;) {
      const part = this.#take(Math.min(length - at, this.#buffered.length));
      body.set(part, at);
      at += part.length;
      if (at === length) return body;
      if (!await this.#more()) return undefined;
    }
  }

  /** A chunked body's data; undefined when the connection ended or was cut first. */
  async #readChunked(maxBodyBytes: number): Promise<Bytes | undefined> {
    const scanner = new ChunkedBodyScanner();
    const parts: Bytes[] = [];
    let size = 0;
    for (;;) {
      const buffered = this.#buffered;
      const scanned = scanner.scan(buffered, 0, (start, end) => {
        parts.push(buffered.subarray(start, end));
        size += end - start;
      });
      if (typeof scanned === "string") {
        this.cut("malformed", 400, scanned);
        return undefined;
      }
      if (size > maxBodyBytes) {
        this.cut(
          "malformed",
          413,
          `Request body is over the limit of ${maxBodyBytes} bytes`,
        );
        return undefined;
      }
      this.#take(scanned);
      if (scanner.done) return concat(parts, size);
      if (!await this.#more()) return undefined;
    }
  }

  #markGone(): void {
    this.#current?.abort();
    this.#answer?.cancel().catch(() => {});
  }
}

/** `data` as one chunk of the chunked coding (RFC 9112 §7.1). */
function chunk(data: Bytes): Bytes {
  if (data.length === 0) return EMPTY;
  const size = data.length.toString(16);
  const out = new Uint8Array(size.length + 2 + data.length + 2);
  latin1Into(size + "\r\n", out);
  out.set(data, size.length + 2);
  out[out.length - 2] = 0x0d;
  out[out.length - 1] = 0x0a;
  return out;
}

function latin1Into(text: string, out: Uint8Array): void {
  // deno-lint-ignore no-control-regex -- ASCII, controls included, encodes the same in UTF-8
  if (/^[\x00-\x7f]*$/.test(text)) {
    encoder.encodeInto(text, out);
    return;
  }
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
}

function concat(parts: readonly Bytes[], size: number): Bytes {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) written += await conn.write(data.subarray(written));
}

let dateSecond = -1;
let dateText = "";

/** The IMF-fixdate of `nowMs` (RFC 9110 §5.6.7), made once a second. */
function httpDate(nowMs: number): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}
