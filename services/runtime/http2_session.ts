/**
 * The client side of one cleartext HTTP/2 connection (prior knowledge, RFC 9113) on `Deno.connect`:
 * streams, flow control in both directions, SETTINGS, PING and GOAWAY. It is what the gRPC channel
 * needs and no more: no server push, no priorities, no trailers from the client.
 *
 * Writes are queued and sent in one `write` per turn of the event loop, so a call's HEADERS and
 * DATA, and the frames of concurrent calls, share a syscall. The session never sends GOAWAY (a
 * Deno HTTP/2 server that receives one can crash, denoland/deno#36788): it just closes the socket.
 *
 * The peer is untrusted (anything registered in Consul is called): what it may make us hold is
 * bounded (a header block of at most {@linkcode MAX_HEADER_LIST_SIZE} bytes, compressed or
 * decoded, in at most {@linkcode MAX_CONTINUATION_FRAMES} CONTINUATION frames; DATA within the
 * windows we advertised), and every frame RFC 9113 calls a connection error closes the connection
 * (section numbers at each check). Stream errors reset the stream alone.
 */
import { encodeHeaders, type HeaderField, HpackDecoder, HpackError } from "./hpack.ts";
import {
  concat,
  DEFAULT_WINDOW,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PADDED,
  FLAG_PRIORITY,
  frame,
  FRAME_CONTINUATION,
  FRAME_DATA,
  FRAME_GOAWAY,
  FRAME_HEADERS,
  FRAME_PING,
  FRAME_PRIORITY,
  FRAME_PUSH_PROMISE,
  FRAME_RST_STREAM,
  FRAME_SETTINGS,
  FRAME_WINDOW_UPDATE,
  frameHeader,
  LAST_STREAM_ID,
  MAX_INBOUND_FRAME,
  MAX_WINDOW,
  PREFACE,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE,
  uint32Payload,
} from "./http2_frames.ts";

/** How a stream ended without an answer, from the connection's point of view. */
export type StreamLoss =
  /** The peer never saw the request (not sent, or above a GOAWAY's last stream): safe to retry. */
  | "refused"
  /** The request was sent and the connection then broke: the peer may have acted on it. */
  | "dropped";

/** What a stream reports to its owner. Called from the session's read loop. */
export interface StreamHandler {
  /** A header block; `endStream` when it also ends the stream (trailers, or trailers-only). */
  onHeaders(fields: HeaderField[], endStream: boolean): void;
  /** DATA payload, valid only during the call. */
  onData(payload: Uint8Array, endStream: boolean): void;
  /** The peer reset the stream with an HTTP/2 error code. */
  onReset(code: number): void;
  /** The connection ended (or refused the stream) before the stream did. */
  onLost(loss: StreamLoss, reason: string): void;
}

/** A request: its header fields, then a body that ends it. */
export interface Http2Request {
  headers: readonly HeaderField[];
  body: Uint8Array;
}

/** A request stream: what the owner may do with it. */
export interface Http2Stream {
  /** Resets the stream with CANCEL unless it has already ended; the handler hears nothing more. */
  cancel(): void;
}

/** Options of {@linkcode Http2Session.connect}. */
export interface Http2SessionOptions {
  /** The connection attempt fails if the peer's SETTINGS have not come by then. */
  timeoutMs: number;
  /** Called once when the session has ended, for whatever reason. */
  onClose?: (session: Http2Session) => void;
  /**
   * While streams are open and nothing has been read for this long, a PING is sent (default
   * 2000 ms). A peer whose node was cut off never answers or resets: without this, its calls
   * would wait for their deadlines instead of going to another instance.
   */
  keepaliveMs?: number;
  /**
   * How long an unanswered PING may wait before the connection counts as lost (default 4000 ms:
   * a peer on a busy machine answers late, and a connection wrongly dropped costs its calls).
   */
  keepaliveTimeoutMs?: number;
}

/** Frames that must be on a stream (never on stream 0). */
const STREAM_FRAMES = new Set([
  FRAME_DATA,
  FRAME_HEADERS,
  FRAME_PRIORITY,
  FRAME_RST_STREAM,
  FRAME_CONTINUATION,
]);
/** Frames that must be on stream 0. */
const CONNECTION_FRAMES = new Set([FRAME_SETTINGS, FRAME_PING, FRAME_GOAWAY]);
const FRAME_NAMES: Record<number, string> = {
  [FRAME_DATA]: "DATA",
  [FRAME_HEADERS]: "HEADERS",
  [FRAME_PRIORITY]: "PRIORITY",
  [FRAME_RST_STREAM]: "RST_STREAM",
  [FRAME_SETTINGS]: "SETTINGS",
  [FRAME_PUSH_PROMISE]: "PUSH_PROMISE",
  [FRAME_PING]: "PING",
  [FRAME_GOAWAY]: "GOAWAY",
  [FRAME_WINDOW_UPDATE]: "WINDOW_UPDATE",
  [FRAME_CONTINUATION]: "CONTINUATION",
};

/** HTTP/2 error codes (RFC 9113 section 7). */
const HTTP2_PROTOCOL_ERROR = 0x1;
const HTTP2_FLOW_CONTROL_ERROR = 0x3;
const HTTP2_CANCEL = 0x8;

/**
 * The largest header list we accept, advertised as SETTINGS_MAX_HEADER_LIST_SIZE and enforced on
 * the compressed block and on the decoded list alike (gRPC's answers need a few hundred bytes).
 */
export const MAX_HEADER_LIST_SIZE = 64 * 1024;
/** CONTINUATION frames one header block may take (64 KiB fits in 4 frames of the default size). */
export const MAX_CONTINUATION_FRAMES = 16;

/** What we let the peer send per stream, and on the whole connection, before we acknowledge. */
const STREAM_WINDOW = 4 * 1024 * 1024;
const CONNECTION_WINDOW = 16 * 1024 * 1024;

interface StreamState {
  readonly id: number;
  readonly handler: StreamHandler;
  /** The request body still to send (flow control), and whether END_STREAM has been queued. */
  body: Uint8Array | undefined;
  bodyOffset: number;
  /** Bytes the peer still lets us send on this stream. */
  sendWindow: number;
  /** Received DATA bytes not yet acknowledged with a WINDOW_UPDATE. */
  unacknowledged: number;
  /** Output offset after the request's last byte, once queued; the request was sent once written. */
  requestEnd: number;
  remoteEnded: boolean;
}

/** A stream waiting for the peer's concurrency limit. */
interface PendingStream {
  headers: Uint8Array;
  body: Uint8Array;
  handler: StreamHandler;
  state: StreamState | undefined;
  cancelled: boolean;
}

/** A frame that breaks RFC 9113: the connection is closed. */
class Http2ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Http2ProtocolError";
  }
}

/**
 * Why the socket failed, in the words grpc-js uses (`read ECONNRESET`), which the discovery client
 * classifies; anything else reads "Connection dropped (…)".
 */
function socketErrorText(operation: "read" | "write", error: unknown): string {
  if (error instanceof Deno.errors.ConnectionReset) return `${operation} ECONNRESET`;
  if (error instanceof Deno.errors.BrokenPipe) return `${operation} EPIPE`;
  if (error instanceof Deno.errors.TimedOut) return `${operation} ETIMEDOUT`;
  return `Connection dropped (${operation}: ${error instanceof Error ? error.message : error})`;
}

/** One HTTP/2 client connection. */
export class Http2Session {
  readonly #conn: Deno.TcpConn;
  readonly #onClose: ((session: Http2Session) => void) | undefined;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, StreamState>();
  readonly #pending: PendingStream[] = [];
  /** Streams whose body waits for a window. */
  readonly #blocked = new Set<StreamState>();
  #nextStreamId = 1;
  #maxConcurrent = Infinity;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = 16_384;
  #connectionSendWindow = DEFAULT_WINDOW;
  #connectionUnacknowledged = 0;
  /** A header block split over CONTINUATION frames. */
  #continuation:
    | { streamId: number; endStream: boolean; chunks: Uint8Array[]; bytes: number; frames: number }
    | undefined;
  #output: Uint8Array[] = [];
  #outputLength = 0;
  /** Bytes ever queued, and ever written to the socket. */
  #queued = 0;
  #written = 0;
  #flushScheduled = false;
  /** Settled by the peer's first SETTINGS, or by the end of the connection before them. */
  #ready: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** No new streams: GOAWAY received, stream IDs used up, or closing. */
  #draining = false;
  #closed = false;
  readonly #keepaliveMs: number;
  readonly #keepaliveTimeoutMs: number;
  #lastReadAt = performance.now();
  /** When the unanswered PING was sent; undefined when none is out. */
  #pingSentAt: number | undefined;
  #keepaliveTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(conn: Deno.TcpConn, options: Http2SessionOptions) {
    this.#conn = conn;
    this.#onClose = options.onClose;
    this.#keepaliveMs = options.keepaliveMs ?? 2000;
    this.#keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? 4000;
  }

  /**
   * Opens a connection and waits for the peer's SETTINGS. Rejects with the socket's error, or when
   * the peer does not speak HTTP/2 within `timeoutMs`.
   */
  static async connect(
    hostname: string,
    port: number,
    options: Http2SessionOptions,
  ): Promise<Http2Session> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let session: Http2Session | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        if (session !== undefined) session.#close("connection timed out");
        reject(new Error(`No HTTP/2 connection within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
    });
    try {
      const connecting = Deno.connect({ hostname, port, transport: "tcp" });
      // A socket that connects after the timeout must not be left open.
      connecting.then((conn) => timedOut && conn.close(), () => {});
      const conn = await Promise.race([connecting, timeout]);
      conn.setNoDelay(true);
      session = new Http2Session(conn, options);
      const ready = new Promise<void>((resolve, reject) => session!.#ready = { resolve, reject });
      session.#start();
      await Promise.race([ready, timeout]);
      return session;
    } catch (error) {
      if (session !== undefined) session.#close("connection failed");
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether new streams may be opened. */
  get available(): boolean {
    return !this.#draining && !this.#closed;
  }

  /** Streams open or waiting to open. */
  get #activeStreams(): number {
    return this.#streams.size + this.#pending.length;
  }

  /**
   * Opens a stream for `request`; `handler` hears what comes back. If the peer's concurrency limit
   * is reached, the stream waits for another to end.
   */
  request(request: Http2Request, handler: StreamHandler): Http2Stream {
    const pending: PendingStream = {
      headers: encodeHeaders(request.headers),
      body: request.body,
      handler,
      state: undefined,
      cancelled: false,
    };
    if (!this.available) {
      handler.onLost("refused", "the connection takes no new streams");
    } else if (this.#streams.size < this.#maxConcurrent) this.#open(pending);
    else this.#pending.push(pending);
    return {
      cancel: () => {
        if (pending.cancelled) return;
        pending.cancelled = true;
        const state = pending.state;
        if (state === undefined) {
          const index = this.#pending.indexOf(pending);
          if (index >= 0) this.#pending.splice(index, 1);
          return;
        }
        if (this.#streams.get(state.id) !== state) return;
        this.#enqueue(frame(FRAME_RST_STREAM, 0, state.id, uint32Payload(HTTP2_CANCEL)));
        this.#endStream(state);
      },
    };
  }

  /** Closes the connection once no stream is left; at once if none is open. */
  closeWhenIdle(): void {
    this.#draining = true;
    if (this.#activeStreams === 0) this.#close("Connection dropped");
  }

  #start(): void {
    const settings = new Uint8Array(18);
    const view = new DataView(settings.buffer);
    view.setUint16(0, SETTINGS_ENABLE_PUSH);
    view.setUint32(2, 0);
    view.setUint16(6, SETTINGS_INITIAL_WINDOW_SIZE);
    view.setUint32(8, STREAM_WINDOW);
    view.setUint16(12, SETTINGS_MAX_HEADER_LIST_SIZE);
    view.setUint32(14, MAX_HEADER_LIST_SIZE);
    this.#enqueue(PREFACE);
    this.#enqueue(frame(FRAME_SETTINGS, 0, 0, settings));
    this.#enqueue(
      frame(FRAME_WINDOW_UPDATE, 0, 0, uint32Payload(CONNECTION_WINDOW - DEFAULT_WINDOW)),
    );
    void this.#readLoop();
  }

  #open(pending: PendingStream): void {
    if (this.#nextStreamId > LAST_STREAM_ID) {
      this.#draining = true;
      pending.handler.onLost("refused", "the connection used up its stream IDs");
      return;
    }
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    if (this.#nextStreamId > LAST_STREAM_ID) this.#draining = true;
    const state: StreamState = {
      id,
      handler: pending.handler,
      body: pending.body,
      bodyOffset: 0,
      sendWindow: this.#peerInitialWindow,
      unacknowledged: 0,
      requestEnd: Infinity,
      remoteEnded: false,
    };
    pending.state = state;
    this.#streams.set(id, state);
    this.#armKeepalive();
    this.#sendHeaders(id, pending.headers);
    this.#sendBody(state);
  }

  #sendHeaders(id: number, block: Uint8Array): void {
    const max = this.#peerMaxFrame;
    if (block.length <= max) {
      this.#enqueue(frame(FRAME_HEADERS, FLAG_END_HEADERS, id, block));
      return;
    }
    this.#enqueue(frame(FRAME_HEADERS, 0, id, block.subarray(0, max)));
    for (let offset = max; offset < block.length; offset += max) {
      const end = Math.min(block.length, offset + max);
      const flags = end === block.length ? FLAG_END_HEADERS : 0;
      this.#enqueue(frame(FRAME_CONTINUATION, flags, id, block.subarray(offset, end)));
    }
  }

  /** Sends as much of the body as the windows allow; the last frame carries END_STREAM. */
  #sendBody(state: StreamState): void {
    const body = state.body;
    if (body === undefined) return;
    while (true) {
      const remaining = body.length - state.bodyOffset;
      const size = Math.min(
        remaining,
        this.#peerMaxFrame,
        this.#connectionSendWindow,
        state.sendWindow,
      );
      if (size <= 0 && remaining > 0) {
        this.#blocked.add(state);
        return;
      }
      const last = size === remaining;
      const out = new Uint8Array(9 + size);
      frameHeader(out, 0, size, FRAME_DATA, last ? FLAG_END_STREAM : 0, state.id);
      out.set(body.subarray(state.bodyOffset, state.bodyOffset + size), 9);
      this.#enqueue(out);
      state.bodyOffset += size;
      state.sendWindow -= size;
      this.#connectionSendWindow -= size;
      if (last) {
        state.body = undefined;
        state.requestEnd = this.#queued;
        this.#blocked.delete(state);
        return;
      }
    }
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#output.push(bytes);
    this.#outputLength += bytes.length;
    this.#queued += bytes.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => void this.#flush());
    }
  }

  async #flush(): Promise<void> {
    try {
      while (this.#output.length > 0 && !this.#closed) {
        const chunk = this.#output.length === 1
          ? this.#output[0]
          : concat(this.#output, this.#outputLength);
        this.#output = [];
        this.#outputLength = 0;
        let offset = 0;
        while (offset < chunk.length) {
          const written = await this.#conn.write(chunk.subarray(offset));
          offset += written;
          this.#written += written;
        }
      }
    } catch (error) {
      this.#close(socketErrorText("write", error));
    } finally {
      this.#flushScheduled = false;
    }
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let carry: Uint8Array | undefined;
    let reason = "Connection dropped";
    try {
      while (!this.#closed) {
        const count = await this.#conn.read(buffer);
        if (count === null) break;
        this.#lastReadAt = performance.now();
        let data = buffer.subarray(0, count);
        if (carry !== undefined) {
          const joined = new Uint8Array(carry.length + count);
          joined.set(carry);
          joined.set(data, carry.length);
          data = joined;
          carry = undefined;
        }
        let offset = 0;
        while (data.length - offset >= 9 && !this.#closed) {
          const length = (data[offset] << 16) | (data[offset + 1] << 8) | data[offset + 2];
          if (length > MAX_INBOUND_FRAME) {
            throw new Http2ProtocolError(`Frame of ${length} bytes is too large`);
          }
          if (data.length - offset < 9 + length) break;
          const type = data[offset + 3];
          const flags = data[offset + 4];
          const streamId = ((data[offset + 5] & 0x7f) << 24) | (data[offset + 6] << 16) |
            (data[offset + 7] << 8) | data[offset + 8];
          this.#onFrame(type, flags, streamId, data.subarray(offset + 9, offset + 9 + length));
          offset += 9 + length;
        }
        // Kept bytes are copied: the buffer is read into again.
        if (offset < data.length) carry = data.slice(offset);
      }
    } catch (error) {
      if (this.#closed) return;
      reason = error instanceof Http2ProtocolError || error instanceof HpackError
        ? `Connection dropped (protocol error: ${error.message})`
        : socketErrorText("read", error);
    }
    this.#close(reason);
  }

  #onFrame(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    if (this.#continuation !== undefined && type !== FRAME_CONTINUATION) {
      // RFC 9113 6.2: a header block is followed only by its CONTINUATION frames.
      throw new Http2ProtocolError("Expected CONTINUATION");
    }
    if (streamId === 0) {
      // RFC 9113 6.1, 6.2, 6.3, 6.4, 6.10: these frames belong to a stream.
      if (STREAM_FRAMES.has(type)) {
        throw new Http2ProtocolError(`${FRAME_NAMES[type]} frame on stream 0`);
      }
    } else {
      // RFC 9113 6.5, 6.7, 6.8: these frames belong to the connection.
      if (CONNECTION_FRAMES.has(type)) {
        throw new Http2ProtocolError(`${FRAME_NAMES[type]} frame on stream ${streamId}`);
      }
      // RFC 9113 5.1: a frame other than PRIORITY on an idle stream (one we never opened; the
      // server opens none, push being off) is a connection error.
      const onStream = STREAM_FRAMES.has(type) || type === FRAME_WINDOW_UPDATE;
      if (onStream && type !== FRAME_PRIORITY && this.#isIdle(streamId)) {
        throw new Http2ProtocolError(`${FRAME_NAMES[type]} frame on idle stream ${streamId}`);
      }
    }
    switch (type) {
      case FRAME_DATA:
        return this.#onData(flags, streamId, payload);
      case FRAME_HEADERS:
        return this.#onHeaders(flags, streamId, payload);
      case FRAME_CONTINUATION:
        return this.#onContinuation(flags, streamId, payload);
      case FRAME_RST_STREAM: {
        if (payload.length !== 4) throw new Http2ProtocolError("RST_STREAM of the wrong size");
        const state = this.#streams.get(streamId);
        if (state === undefined) return;
        this.#endStream(state);
        state.handler.onReset(new DataView(payload.buffer, payload.byteOffset).getUint32(0));
        return;
      }
      case FRAME_SETTINGS:
        return this.#onSettings(flags, payload);
      case FRAME_PING:
        if (payload.length !== 8) throw new Http2ProtocolError("PING of the wrong size");
        if ((flags & FLAG_ACK) === 0) this.#enqueue(frame(FRAME_PING, FLAG_ACK, 0, payload));
        else this.#pingSentAt = undefined;
        return;
      case FRAME_GOAWAY:
        return this.#onGoaway(payload);
      case FRAME_WINDOW_UPDATE:
        return this.#onWindowUpdate(streamId, payload);
      case FRAME_PUSH_PROMISE:
        throw new Http2ProtocolError("PUSH_PROMISE although push is disabled");
      default:
        // PRIORITY and unknown frame types are ignored.
        return;
    }
  }

  /** Whether `streamId` was never opened by us (server-initiated IDs are even: never ours). */
  #isIdle(streamId: number): boolean {
    return streamId % 2 === 0 || streamId >= this.#nextStreamId;
  }

  #onData(flags: number, streamId: number, payload: Uint8Array): void {
    // Flow control counts the whole payload, padding included, even for a stream we closed.
    this.#connectionUnacknowledged += payload.length;
    // RFC 9113 6.9.1: a peer that sends more than the window we gave it breaks flow control.
    if (this.#connectionUnacknowledged > CONNECTION_WINDOW) {
      throw new Http2ProtocolError("DATA beyond the connection's flow-control window");
    }
    if (this.#connectionUnacknowledged >= CONNECTION_WINDOW / 2) {
      this.#enqueue(
        frame(FRAME_WINDOW_UPDATE, 0, 0, uint32Payload(this.#connectionUnacknowledged)),
      );
      this.#connectionUnacknowledged = 0;
    }
    const state = this.#streams.get(streamId);
    if (state === undefined || state.remoteEnded) return;
    const data = (flags & FLAG_PADDED) ? unpad(payload) : payload;
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (state.unacknowledged + payload.length > STREAM_WINDOW) {
      return this.#streamError(state, HTTP2_FLOW_CONTROL_ERROR);
    }
    if (endStream) this.#remoteEnd(state);
    else {
      state.unacknowledged += payload.length;
      if (state.unacknowledged >= STREAM_WINDOW / 2) {
        this.#enqueue(frame(FRAME_WINDOW_UPDATE, 0, streamId, uint32Payload(state.unacknowledged)));
        state.unacknowledged = 0;
      }
    }
    state.handler.onData(data, endStream);
  }

  #onHeaders(flags: number, streamId: number, payload: Uint8Array): void {
    let block = (flags & FLAG_PADDED) ? unpad(payload) : payload;
    if (flags & FLAG_PRIORITY) {
      if (block.length < 5) throw new Http2ProtocolError("HEADERS too short for its priority");
      block = block.subarray(5);
    }
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if ((flags & FLAG_END_HEADERS) === 0) {
      this.#continuation = {
        streamId,
        endStream,
        chunks: [block.slice()],
        bytes: block.length,
        frames: 0,
      };
      this.#checkHeaderBlock(this.#continuation);
      return;
    }
    this.#checkHeaderBlock({ bytes: block.length, frames: 0 });
    this.#headerBlock(streamId, endStream, block);
  }

  /**
   * A header block is bounded in bytes and in frames: a peer may not make us gather CONTINUATION
   * frames without end (RFC 9113 10.5.1 lets an endpoint refuse what exceeds its
   * SETTINGS_MAX_HEADER_LIST_SIZE; the block must be decoded to keep HPACK in step, so the whole
   * connection goes).
   */
  #checkHeaderBlock(block: { bytes: number; frames: number }): void {
    if (block.bytes > MAX_HEADER_LIST_SIZE) {
      throw new Http2ProtocolError(`Header block larger than ${MAX_HEADER_LIST_SIZE} bytes`);
    }
    if (block.frames > MAX_CONTINUATION_FRAMES) {
      throw new Http2ProtocolError(
        `Header block in more than ${MAX_CONTINUATION_FRAMES} CONTINUATION frames`,
      );
    }
  }

  #onContinuation(flags: number, streamId: number, payload: Uint8Array): void {
    const continuation = this.#continuation;
    if (continuation === undefined || continuation.streamId !== streamId) {
      // RFC 9113 6.10: CONTINUATION only after a HEADERS without END_HEADERS, on its stream.
      throw new Http2ProtocolError("Unexpected CONTINUATION");
    }
    continuation.bytes += payload.length;
    continuation.frames++;
    this.#checkHeaderBlock(continuation);
    continuation.chunks.push(payload.slice());
    if ((flags & FLAG_END_HEADERS) === 0) return;
    this.#continuation = undefined;
    const total = continuation.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    this.#headerBlock(streamId, continuation.endStream, concat(continuation.chunks, total));
  }

  #headerBlock(streamId: number, endStream: boolean, block: Uint8Array): void {
    // Every block is decoded, even for a stream we closed, to keep the table in step.
    const fields = this.#decoder.decode(block, MAX_HEADER_LIST_SIZE);
    const state = this.#streams.get(streamId);
    if (state === undefined || state.remoteEnded) return;
    if (endStream) this.#remoteEnd(state);
    state.handler.onHeaders(fields, endStream);
  }

  #onSettings(flags: number, payload: Uint8Array): void {
    if (flags & FLAG_ACK) {
      // RFC 9113 6.5: an acknowledgement carries nothing.
      if (payload.length !== 0) throw new Http2ProtocolError("SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6 !== 0) throw new Http2ProtocolError("SETTINGS of the wrong size");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    for (let offset = 0; offset < payload.length; offset += 6) {
      const id = view.getUint16(offset);
      const value = view.getUint32(offset + 2);
      if (id === SETTINGS_MAX_CONCURRENT_STREAMS) this.#maxConcurrent = value;
      else if (id === SETTINGS_ENABLE_PUSH) {
        // RFC 9113 6.5.2: a server never sets it to 1, and it is 0 or 1.
        if (value !== 0) throw new Http2ProtocolError("SETTINGS_ENABLE_PUSH from a server");
      } else if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) {
          throw new Http2ProtocolError("SETTINGS_INITIAL_WINDOW_SIZE too large");
        }
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const state of this.#streams.values()) {
          state.sendWindow += delta;
          // RFC 9113 6.9.2: a change that takes any window past 2^31-1 is a connection error.
          if (state.sendWindow > MAX_WINDOW) {
            throw new Http2ProtocolError("SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window");
          }
        }
      } else if (id === SETTINGS_MAX_FRAME_SIZE) {
        if (value < 16_384 || value > 16_777_215) {
          throw new Http2ProtocolError("Invalid SETTINGS_MAX_FRAME_SIZE");
        }
        this.#peerMaxFrame = value;
      }
    }
    this.#enqueue(frame(FRAME_SETTINGS, FLAG_ACK, 0));
    this.#resumeBlocked();
    this.#openPending();
    this.#ready?.resolve();
    this.#ready = undefined;
  }

  #onWindowUpdate(streamId: number, payload: Uint8Array): void {
    if (payload.length !== 4) throw new Http2ProtocolError("WINDOW_UPDATE of the wrong size");
    const increment = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
    if (streamId === 0) {
      // RFC 9113 6.9: an increment of 0 on the connection, or a window past 2^31-1 (6.9.1), is a
      // connection error.
      if (increment === 0) throw new Http2ProtocolError("WINDOW_UPDATE of 0 on the connection");
      this.#connectionSendWindow += increment;
      if (this.#connectionSendWindow > MAX_WINDOW) {
        throw new Http2ProtocolError("WINDOW_UPDATE takes the connection window past 2^31-1");
      }
    } else {
      const state = this.#streams.get(streamId);
      if (state === undefined) return;
      // The same on a stream is a stream error (RFC 9113 6.9, 6.9.1).
      if (increment === 0) return this.#streamError(state, HTTP2_PROTOCOL_ERROR);
      state.sendWindow += increment;
      if (state.sendWindow > MAX_WINDOW) return this.#streamError(state, HTTP2_FLOW_CONTROL_ERROR);
    }
    this.#resumeBlocked();
  }

  /** Resets one stream for a stream error; its owner hears a reset with `code`. */
  #streamError(state: StreamState, code: number): void {
    this.#enqueue(frame(FRAME_RST_STREAM, 0, state.id, uint32Payload(code)));
    this.#endStream(state);
    state.handler.onReset(code);
  }

  #onGoaway(payload: Uint8Array): void {
    if (payload.length < 8) throw new Http2ProtocolError("GOAWAY of the wrong size");
    const lastStreamId = new DataView(payload.buffer, payload.byteOffset).getUint32(0) &
      0x7fffffff;
    this.#draining = true;
    // Streams above the last one the peer processed were never acted on.
    for (const state of [...this.#streams.values()]) {
      if (state.id > lastStreamId) {
        this.#endStream(state);
        state.handler.onLost("refused", "Stream refused by server");
      }
    }
    for (const pending of this.#pending.splice(0)) {
      pending.handler.onLost("refused", "Stream refused by server");
    }
    if (this.#streams.size === 0) this.#close("Connection dropped");
  }

  #resumeBlocked(): void {
    for (const state of [...this.#blocked]) {
      if (this.#connectionSendWindow <= 0) return;
      this.#blocked.delete(state);
      this.#sendBody(state);
    }
  }

  #remoteEnd(state: StreamState): void {
    state.remoteEnded = true;
    // A response that ends before the request is fully sent ends the request too (e.g. an error).
    if (state.body !== undefined) {
      this.#enqueue(frame(FRAME_RST_STREAM, 0, state.id, uint32Payload(0)));
    }
    this.#endStream(state);
  }

  #endStream(state: StreamState): void {
    if (this.#streams.get(state.id) !== state) return;
    this.#streams.delete(state.id);
    this.#blocked.delete(state);
    state.body = undefined;
    this.#openPending();
    if (this.#draining && this.#activeStreams === 0) {
      // The frames of the stream that just ended go out first.
      queueMicrotask(() => {
        if (this.#activeStreams === 0) this.#close("Connection dropped");
      });
    }
  }

  #openPending(): void {
    while (
      this.#pending.length > 0 && this.#streams.size < this.#maxConcurrent && this.available
    ) {
      const pending = this.#pending.shift()!;
      if (!pending.cancelled) this.#open(pending);
    }
  }

  /** Checks the connection's liveness every keepalive period while streams are open. */
  #armKeepalive(): void {
    if (this.#keepaliveTimer !== undefined || this.#closed) return;
    this.#keepaliveTimer = setTimeout(() => {
      this.#keepaliveTimer = undefined;
      if (this.#closed || this.#activeStreams === 0) {
        this.#pingSentAt = undefined;
        return;
      }
      const now = performance.now();
      if (this.#pingSentAt !== undefined) {
        if (now - this.#pingSentAt >= this.#keepaliveTimeoutMs) {
          this.#close(
            `Connection dropped (no answer to PING within ${this.#keepaliveTimeoutMs} ms)`,
          );
          return;
        }
      } else if (now - this.#lastReadAt >= this.#keepaliveMs) {
        this.#pingSentAt = now;
        this.#enqueue(frame(FRAME_PING, 0, 0, new Uint8Array(8)));
      }
      this.#armKeepalive();
    }, Math.min(this.#keepaliveMs, this.#keepaliveTimeoutMs) / 2);
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#draining = true;
    if (this.#keepaliveTimer !== undefined) clearTimeout(this.#keepaliveTimer);
    this.#keepaliveTimer = undefined;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer's reset.
    }
    const written = this.#written;
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    this.#blocked.clear();
    for (const state of streams) {
      if (state.requestEnd <= written) state.handler.onLost("dropped", reason);
      else state.handler.onLost("refused", reason);
    }
    for (const pending of this.#pending.splice(0)) pending.handler.onLost("refused", reason);
    this.#ready?.reject(new Error(`The connection ended before HTTP/2 SETTINGS: ${reason}`));
    this.#ready = undefined;
    this.#onClose?.(this);
  }
}

/** The payload of a PADDED frame without its pad length and padding. */
function unpad(payload: Uint8Array): Uint8Array {
  if (payload.length === 0) throw new Http2ProtocolError("PADDED frame without pad length");
  const padding = payload[0];
  if (padding >= payload.length) throw new Http2ProtocolError("Padding longer than the frame");
  return payload.subarray(1, payload.length - padding);
}
