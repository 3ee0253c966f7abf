/**
 * The MCP port's connections, in front of `Deno.serve`: header and body read timeouts, idle
 * connections, a connection cap, and the client's source address.
 *
 * Why: `Deno.serve` (hyper) has no header read, body read or keep-alive timeout and no option for
 * one, and `node:http`'s `headersTimeout`/`requestTimeout` are not honoured on Deno either
 * (measured on Deno 2.9.6: a connection with half a header block, one with half a body, and an
 * idle one all stayed open past 75 s). A slowloris client could hold every file descriptor. So the
 * guard accepts the connections itself, follows each request's framing (`request_framing.ts`) and
 * copies the bytes to the router's `Deno.serve` on loopback, one upstream connection per client
 * connection; `Deno.serve` still parses, and answers, every request.
 *
 * - a request's header block must arrive within `headerTimeoutMs` of its first byte (of the
 *   connection, for the first request): else 408 and the connection is closed;
 * - its body within `bodyTimeoutMs` of its head: else 408 (unless the router has begun to answer
 *   that request) and the connection is closed;
 * - a connection with no byte either way for `idleTimeoutMs` is closed (a listening stream's
 *   heartbeats count, so only dead or silent ones go);
 * - at most `maxConnections` are open; others are closed at once.
 *
 * The source address reaches the router as the `x-router-peer` header, which replaces any a client
 * sent, and the connection as `x-router-connection`, whose {@linkcode ConnectionGuard.signalOf}
 * aborts when the client's connection closes: `Deno.serve`'s `request.signal` misses that for the
 * first request of a connection (measured: a client closing its connection during its first call
 * left the backend call running to its end), and a call whose client is gone must be cancelled. HTTP/1.x only: an HTTP/2 preface is refused (nothing sends h2c to the routers; HAProxy
 * speaks HTTP/1.1 to them). What would change this: `Deno.serve` gaining read timeouts.
 */
import { concat } from "../runtime/http2_frames.ts";
import type { Logger } from "../runtime/logger.ts";
import {
  ChunkedBodyScanner,
  CONNECTION_HEADER,
  type HeadAddition,
  headAddition,
  parseHead,
  PEER_HEADER,
} from "./request_framing.ts";

/** Options of {@linkcode ConnectionGuard}. */
export interface ConnectionGuardOptions {
  /** Where the router's `Deno.serve` listens (loopback). */
  upstream: { hostname: string; port: number };
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
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

// Each connection holds one buffer per direction for its whole life: 1,000 listening streams with
// 64 KiB ones took 128 MiB. Requests are small (a large body takes more reads); answers get more.
const REQUEST_BUFFER = 4 * 1024;
const ANSWER_BUFFER = 16 * 1024;
const encoder = new TextEncoder();

interface GuardedConnection {
  /** "head": reading a header block; "body": reading a body. */
  phase: "head" | "body";
  /** When the header block being read began (its first byte), if it has. */
  headStartedAt: number | undefined;
  bodyStartedAt: number;
  lastActivity: number;
  /** No answer was started on this connection: a 408 or 400 can still be written. */
  fresh: boolean;
  /** The router has sent bytes since the current request's head went to it. */
  answered: boolean;
  cut(reason: CutReason, answer?: string): void;
}

/** Guards the connections of one listener; see the module header. */
export class ConnectionGuard {
  readonly #options: ConnectionGuardOptions;
  readonly #now: () => number;
  readonly #open = new Set<GuardedConnection>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #closedSignals = new Map<string, AbortController>();
  #nextId = 0;
  #listener: Deno.TcpListener | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;

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
        if (this.#open.size >= this.#options.maxConnections) {
          this.#options.onCut?.("max_connections");
          conn.close();
          continue;
        }
        this.#track(this.#handle(conn));
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
        connection.cut("header_timeout", timeoutAnswer("header block"));
      } else if (
        connection.phase === "body" &&
        nowMs - connection.bodyStartedAt >= bodyTimeoutMs
      ) {
        connection.cut("body_timeout", timeoutAnswer("body"));
      } else if (nowMs - connection.lastActivity >= idleTimeoutMs) {
        connection.cut("idle");
      }
    }
  }

  /** Aborts when the client connection of ID `id` (the `x-router-connection` header) closes. */
  signalOf(id: string | null): AbortSignal | undefined {
    return id === null ? undefined : this.#closedSignals.get(id)?.signal;
  }

  /** Stops accepting; open connections go on. */
  stopAccepting(): void {
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    this.stopAccepting();
    clearInterval(this.#sweeper);
    for (const connection of [...this.#open]) connection.cut("idle");
    await Promise.allSettled([...this.#tasks]);
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #handle(client: Deno.TcpConn): Promise<void> {
    const now = this.#now();
    let upstream: Deno.TcpConn | undefined;
    // Set once the connection is being cut or closed; closing twice is harmless.
    let ending = false;
    const connection: GuardedConnection = {
      phase: "head",
      headStartedAt: now,
      bodyStartedAt: now,
      lastActivity: now,
      fresh: true,
      answered: false,
      cut: (reason, answer) => {
        if (ending) return;
        ending = true;
        this.#options.onCut?.(reason);
        // A 408 for a late body fits wherever the router has not begun answering that request.
        const clear = connection.fresh || (reason === "body_timeout" && !connection.answered);
        if (answer !== undefined && clear) {
          // Best effort: a client that reads nothing must not hold the cut up.
          client.write(encoder.encode(answer)).catch(() => {}).finally(close);
          return;
        }
        close();
      },
    };
    const id = String(++this.#nextId);
    const gone = new AbortController();
    this.#closedSignals.set(id, gone);
    const close = () => {
      ending = true;
      this.#open.delete(connection);
      if (this.#closedSignals.delete(id)) gone.abort();
      for (const conn of [client, upstream]) {
        try {
          conn?.close();
        } catch {
          // Already closed by the other side.
        }
      }
    };
    this.#open.add(connection);
    try {
      client.setNoDelay(true);
      upstream = await Deno.connect({ ...this.#options.upstream, transport: "tcp" });
      upstream.setNoDelay(true);
    } catch (error) {
      this.#options.logger.warn("Cannot reach the router's own server", {
        error: (error as Error).message,
      });
      close();
      return;
    }
    const peer = (client.remoteAddr as Deno.NetAddr).hostname;
    const down = this.#copyAnswers(upstream, client, connection).finally(close);
    const added = headAddition({ [PEER_HEADER]: peer, [CONNECTION_HEADER]: id });
    await this.#copyRequests(client, upstream, connection, added).catch(() => {});
    // The client went (or half-closed, which HTTP clients do not do to wait for an answer):
    // closing the upstream connection is what aborts the router's `request.signal`, which cancels
    // the backend call. A half-close would leave the call running to its end.
    close();
    await down;
  }

  async #copyAnswers(
    upstream: Deno.TcpConn,
    client: Deno.TcpConn,
    connection: GuardedConnection,
  ): Promise<void> {
    const buffer = new Uint8Array(ANSWER_BUFFER);
    try {
      for (;;) {
        const n = await upstream.read(buffer);
        if (n === null) return;
        connection.lastActivity = this.#now();
        connection.fresh = false;
        connection.answered = true;
        await writeAll(client, buffer.subarray(0, n));
      }
    } catch {
      // Either side went away; the connection is closed by the caller.
    }
  }

  async #copyRequests(
    client: Deno.TcpConn,
    upstream: Deno.TcpConn,
    connection: GuardedConnection,
    added: HeadAddition,
  ): Promise<void> {
    const maxHeaderBytes = this.#options.maxHeaderBytes ?? 64 * 1024;
    const buffer = new Uint8Array(REQUEST_BUFFER);
    let head: Uint8Array = new Uint8Array(0);
    let bodyLeft = 0;
    let chunked: ChunkedBodyScanner | undefined;
    for (;;) {
      const n = await client.read(buffer);
      if (n === null) return;
      const now = this.#now();
      connection.lastActivity = now;
      let data: Uint8Array = buffer.subarray(0, n);
      // What one read brings goes upstream in one write (a head and its body usually come together).
      const out: Uint8Array[] = [];
      while (data.length > 0) {
        if (connection.phase === "body") {
          let taken: number;
          if (chunked !== undefined) {
            const scanned = chunked.scan(data);
            if (typeof scanned === "string") return connection.cut("malformed");
            taken = scanned;
            if (chunked.done) chunked = undefined;
          } else {
            taken = Math.min(bodyLeft, data.length);
            bodyLeft -= taken;
          }
          out.push(data.subarray(0, taken));
          data = data.subarray(taken);
          if (chunked === undefined && bodyLeft === 0) {
            connection.phase = "head";
            connection.headStartedAt = undefined;
          }
          continue;
        }
        connection.headStartedAt ??= now;
        head = head.length === 0 ? data : concatAll([head, data]);
        data = new Uint8Array(0);
        const parsed = parseHead(head, added, maxHeaderBytes);
        if (parsed.kind === "incomplete") {
          // `head` may be a view of `buffer`, which the next read overwrites.
          head = head.slice();
          break;
        }
        if (parsed.kind === "error") {
          return connection.cut("malformed", errorAnswer(parsed.status, parsed.message));
        }
        out.push(parsed.head);
        data = head.subarray(parsed.consumed);
        head = new Uint8Array(0);
        connection.answered = false;
        if (parsed.body.kind === "none") {
          connection.headStartedAt = undefined;
          continue;
        }
        connection.phase = "body";
        connection.bodyStartedAt = now;
        if (parsed.body.kind === "chunked") chunked = new ChunkedBodyScanner();
        else bodyLeft = parsed.body.length;
      }
      if (out.length > 0) await writeAll(upstream, out.length === 1 ? out[0] : concatAll(out));
    }
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) written += await conn.write(data.subarray(written));
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  return concat(parts, parts.reduce((total, part) => total + part.length, 0));
}

function timeoutAnswer(what: string): string {
  return errorAnswer(408, `Request ${what} did not arrive in time`);
}

function errorAnswer(status: number, message: string): string {
  const reason = status === 408
    ? "Request Timeout"
    : status === 431
    ? "Request Header Fields Too Large"
    : "Bad Request";
  const body = JSON.stringify({ jsonrpc: "2.0", error: { code: -32600, message }, id: null });
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\n` +
    `content-length: ${encoder.encode(body).length}\r\nconnection: close\r\n\r\n${body}`;
}
