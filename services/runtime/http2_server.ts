/**
 * The server side of cleartext HTTP/2 connections (prior knowledge, RFC 9113) on `Deno.listen`: what
 * a gRPC server needs and no more. Requests are delivered whole (headers and a body that ends the
 * stream); answers are HEADERS, DATA under the peer's flow-control windows, and trailers.
 *
 * Why not `node:http2` (grpc-js's transport): on Deno it cost the echo agent about 200 µs of CPU per
 * call; this costs a fraction of that (numbers in the README). Why not `Deno.serve`, which speaks h2c:
 * a response cannot carry trailers there, and gRPC answers its status in trailers. Revisit if
 * `Deno.serve` gains response trailers.
 *
 * Writes are queued and sent in one `write` per turn of the event loop, as the client session does.
 * Connection errors answer GOAWAY with the RFC 9113 error code and close the socket; a stream over
 * SETTINGS_MAX_CONCURRENT_STREAMS is refused with RST_STREAM(REFUSED_STREAM), which clients retry.
 * {@linkcode Http2ServerConnection.drain} sends GOAWAY with the highest stream ID (RFC 9113 §6.8: a
 * graceful shutdown's first GOAWAY), so nothing already sent is refused, and closes the connection
 * once its streams have ended.
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
  SETTINGS_HEADER_TABLE_SIZE,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  uint32Payload,
} from "./http2_frames.ts";

/** HTTP/2 error codes (RFC 9113 §7). */
export const Http2ErrorCode = Object.freeze({
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
});

/** Received header blocks (HEADERS plus CONTINUATION) larger than this end the connection. */
const MAX_HEADER_BLOCK = 64 * 1024;

/** A connection error: GOAWAY with `code`, then close. */
class ConnectionError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "ConnectionError";
  }
}

/** A request stream as the server's handler sees it. */
export interface Http2ServerStream {
  readonly id: number;
  /** The request's header fields, pseudo-headers included. */
  readonly headers: readonly HeaderField[];
  /** The whole request body. */
  readonly body: Uint8Array;
  /** Aborted when the peer resets the stream or the connection ends before the answer did. */
  readonly signal: AbortSignal;
  /** Sends the response headers. */
  respond(headers: readonly HeaderField[]): void;
  /** Sends DATA (after `respond`), as the peer's windows allow. */
  write(data: Uint8Array): void;
  /** Sends trailers with END_STREAM after any queued DATA (a trailers-only answer without `respond`). */
  end(trailers: readonly HeaderField[]): void;
  /** Resets the stream. */
  reset(code: number): void;
  /**
   * For a stream dispatched at its headers ({@linkcode Http2ServerConnectionOptions.isStreaming}):
   * where its DATA goes as it arrives, then the end of the request.
   */
  receive(receiver: StreamReceiver): void;
}

/** What a streaming request's handler takes in. */
export interface StreamReceiver {
  onData(chunk: Uint8Array): void;
  /** The client half-closed (END_STREAM). */
  onEnd(): void;
}

/** Options of {@linkcode Http2ServerConnection}. */
export interface Http2ServerConnectionOptions {
  /** SETTINGS_MAX_CONCURRENT_STREAMS announced and enforced. */
  maxConcurrentStreams: number;
  /** Largest request body accepted; a larger one is reset with `onOversized`'s code. */
  maxBodyBytes: number;
  /** Called for each complete request, or at the headers of a streaming one. */
  onRequest(stream: Http2ServerStream): void;
  /** Whether a request is handed over at its headers, its body following as it comes. */
  isStreaming?(headers: readonly HeaderField[]): boolean;
  /** Answers a body over `maxBodyBytes` (the stream is then done). */
  onOversized(stream: Http2ServerStream): void;
  /** Called once the connection has closed. */
  onClose?(connection: Http2ServerConnection): void;
}

interface StreamState {
  readonly id: number;
  headers: HeaderField[];
  chunks: Uint8Array[];
  bodyLength: number;
  /** Received DATA not yet acknowledged with WINDOW_UPDATE. */
  unacknowledged: number;
  remoteEnded: boolean;
  /** Handed to the handler: its answer is pending. */
  dispatched: boolean;
  /** Bytes the peer still lets us send on this stream. */
  sendWindow: number;
  /** DATA waiting for a window, then the trailers. */
  outbound: Uint8Array[];
  outboundOffset: number;
  trailers: Uint8Array | undefined;
  readonly controller: AbortController;
  localEnded: boolean;
  /** Dispatched at its headers: DATA goes to `receiver` (kept in `chunks` until it is set). */
  streaming: boolean;
  receiver: StreamReceiver | undefined;
}

function unpad(payload: Uint8Array): Uint8Array {
  if (payload.length === 0) {
    throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "PADDED frame without pad length");
  }
  const padding = payload[0];
  if (padding >= payload.length) {
    throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "Padding longer than the frame");
  }
  return payload.subarray(1, payload.length - padding);
}

/** One server connection. */
export class Http2ServerConnection {
  readonly #conn: Deno.Conn;
  readonly #options: Http2ServerConnectionOptions;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, StreamState>();
  readonly #blocked = new Set<StreamState>();
  #lastStreamId = 0;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = 16_384;
  #connectionSendWindow = DEFAULT_WINDOW;
  #connectionUnacknowledged = 0;
  #continuation:
    | { streamId: number; endStream: boolean; chunks: Uint8Array[]; size: number }
    | undefined;
  #output: Uint8Array[] = [];
  #outputLength = 0;
  #flushing = false;
  #draining = false;
  #closed = false;
  readonly #done: Promise<void>;

  constructor(conn: Deno.Conn, options: Http2ServerConnectionOptions) {
    this.#conn = conn;
    this.#options = options;
    const settings = new Uint8Array(18);
    const view = new DataView(settings.buffer);
    view.setUint16(0, SETTINGS_MAX_CONCURRENT_STREAMS);
    view.setUint32(2, options.maxConcurrentStreams);
    view.setUint16(6, SETTINGS_INITIAL_WINDOW_SIZE);
    view.setUint32(8, Math.min(MAX_WINDOW, Math.max(DEFAULT_WINDOW, options.maxBodyBytes + 5)));
    view.setUint16(12, SETTINGS_ENABLE_PUSH);
    view.setUint32(14, 0);
    this.#enqueue(frame(FRAME_SETTINGS, 0, 0, settings));
    this.#done = this.#readLoop();
  }

  /** Streams whose answer is pending. */
  get activeStreams(): number {
    return this.#streams.size;
  }

  /** Resolves when the connection has closed. */
  get closed(): Promise<void> {
    return this.#done;
  }

  /** Takes no new streams (GOAWAY, highest stream ID); closes once the open ones have ended. */
  drain(): void {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    this.#enqueue(frame(FRAME_GOAWAY, 0, 0, goawayPayload(LAST_STREAM_ID, 0)));
    this.#closeIfIdle();
  }

  /** Closes the socket now; pending answers are aborted. */
  close(): void {
    this.#close();
  }

  #closeIfIdle(): void {
    if (!this.#draining || this.#streams.size > 0) return;
    // The frames already queued (the last answers, the GOAWAY) go out first.
    queueMicrotask(() => {
      if (this.#streams.size === 0) void this.#flush().then(() => this.#close());
    });
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#output.push(bytes);
    this.#outputLength += bytes.length;
    if (!this.#flushing) {
      this.#flushing = true;
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
        while (offset < chunk.length) offset += await this.#conn.write(chunk.subarray(offset));
      }
    } catch {
      this.#close();
    } finally {
      this.#flushing = false;
    }
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let data = new Uint8Array(0);
    let prefaceSeen = false;
    try {
      while (!this.#closed) {
        const count = await this.#conn.read(buffer);
        if (count === null) break;
        if (data.length === 0) data = buffer.subarray(0, count);
        else {
          const joined = new Uint8Array(data.length + count);
          joined.set(data);
          joined.set(buffer.subarray(0, count), data.length);
          data = joined;
        }
        let offset = 0;
        if (!prefaceSeen) {
          if (data.length < PREFACE.length) {
            if (!PREFACE.subarray(0, data.length).every((byte, i) => data[i] === byte)) {
              throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "Not an HTTP/2 preface");
            }
            data = data.slice();
            continue;
          }
          if (!PREFACE.every((byte, i) => data[i] === byte)) {
            throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "Not an HTTP/2 preface");
          }
          prefaceSeen = true;
          offset = PREFACE.length;
        }
        while (data.length - offset >= 9 && !this.#closed) {
          const length = (data[offset] << 16) | (data[offset + 1] << 8) | data[offset + 2];
          if (length > MAX_INBOUND_FRAME) {
            throw new ConnectionError(
              Http2ErrorCode.FRAME_SIZE_ERROR,
              `Frame of ${length} bytes is over SETTINGS_MAX_FRAME_SIZE`,
            );
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
        data = offset < data.length ? data.slice(offset) : new Uint8Array(0);
      }
    } catch (error) {
      if (this.#closed) return;
      const code = error instanceof ConnectionError
        ? error.code
        : error instanceof HpackError
        ? Http2ErrorCode.COMPRESSION_ERROR
        : undefined;
      if (code !== undefined) {
        this.#enqueue(frame(FRAME_GOAWAY, 0, 0, goawayPayload(this.#lastStreamId, code)));
        await this.#flush();
      }
    }
    this.#close();
  }

  #onFrame(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    if (this.#continuation !== undefined && type !== FRAME_CONTINUATION) {
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "Expected CONTINUATION");
    }
    switch (type) {
      case FRAME_DATA:
        return this.#onData(flags, streamId, payload);
      case FRAME_HEADERS:
        return this.#onHeaders(flags, streamId, payload);
      case FRAME_CONTINUATION:
        return this.#onContinuation(flags, streamId, payload);
      case FRAME_PRIORITY:
        if (streamId === 0) {
          throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
        }
        return;
      case FRAME_RST_STREAM: {
        if (streamId === 0) {
          throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
        }
        if (payload.length !== 4) {
          throw new ConnectionError(
            Http2ErrorCode.FRAME_SIZE_ERROR,
            "RST_STREAM of the wrong size",
          );
        }
        if (streamId > this.#lastStreamId) {
          throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
        }
        const state = this.#streams.get(streamId);
        if (state !== undefined) {
          this.#endStream(state);
          state.controller.abort();
        }
        return;
      }
      case FRAME_SETTINGS:
        return this.#onSettings(flags, streamId, payload);
      case FRAME_PING:
        if (streamId !== 0) {
          throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "PING on a stream");
        }
        if (payload.length !== 8) {
          throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "PING of the wrong size");
        }
        if ((flags & FLAG_ACK) === 0) this.#enqueue(frame(FRAME_PING, FLAG_ACK, 0, payload));
        return;
      case FRAME_GOAWAY:
        if (streamId !== 0) {
          throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
        }
        // The client opens no more streams; answer those open, then close.
        this.#draining = true;
        this.#closeIfIdle();
        return;
      case FRAME_WINDOW_UPDATE:
        return this.#onWindowUpdate(streamId, payload);
      case FRAME_PUSH_PROMISE:
        throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  #onData(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId === 0) {
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    }
    if (streamId > this.#lastStreamId) {
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream");
    }
    // Flow control counts every DATA payload, padding included, even for a closed stream.
    this.#connectionUnacknowledged += payload.length;
    if (this.#connectionUnacknowledged >= DEFAULT_WINDOW / 2) {
      this.#enqueue(
        frame(FRAME_WINDOW_UPDATE, 0, 0, uint32Payload(this.#connectionUnacknowledged)),
      );
      this.#connectionUnacknowledged = 0;
    }
    const state = this.#streams.get(streamId);
    if (state === undefined || state.remoteEnded) {
      // A stream we closed: STREAM_CLOSED for that stream (RFC 9113 §5.1).
      if (state === undefined) {
        this.#enqueue(
          frame(FRAME_RST_STREAM, 0, streamId, uint32Payload(Http2ErrorCode.STREAM_CLOSED)),
        );
      }
      return;
    }
    const data = (flags & FLAG_PADDED) ? unpad(payload) : payload;
    if (state.streaming) {
      // Acknowledged as it is handed on: the handler bounds what it keeps (one message).
      state.unacknowledged += payload.length;
      if (state.receiver !== undefined) state.receiver.onData(data.slice());
      else state.chunks.push(data.slice());
      if ((flags & FLAG_END_STREAM) !== 0) return this.#remoteEnd(state);
      if (state.unacknowledged >= DEFAULT_WINDOW / 2) {
        this.#enqueue(frame(FRAME_WINDOW_UPDATE, 0, streamId, uint32Payload(state.unacknowledged)));
        state.unacknowledged = 0;
      }
      return;
    }
    state.bodyLength += data.length;
    if (state.bodyLength > this.#options.maxBodyBytes) {
      this.#dispatchOversized(state);
      return;
    }
    state.chunks.push(data.slice());
    state.unacknowledged += payload.length;
    if ((flags & FLAG_END_STREAM) !== 0) return this.#remoteEnd(state);
    if (state.unacknowledged >= DEFAULT_WINDOW / 2) {
      this.#enqueue(frame(FRAME_WINDOW_UPDATE, 0, streamId, uint32Payload(state.unacknowledged)));
      state.unacknowledged = 0;
    }
  }

  #onHeaders(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId === 0) {
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    }
    let block = (flags & FLAG_PADDED) ? unpad(payload) : payload;
    if (flags & FLAG_PRIORITY) block = block.subarray(5);
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if ((flags & FLAG_END_HEADERS) === 0) {
      this.#continuation = { streamId, endStream, chunks: [block.slice()], size: block.length };
      return;
    }
    this.#headerBlock(streamId, endStream, block);
  }

  #onContinuation(flags: number, streamId: number, payload: Uint8Array): void {
    const continuation = this.#continuation;
    if (continuation === undefined || continuation.streamId !== streamId) {
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "Unexpected CONTINUATION");
    }
    continuation.size += payload.length;
    if (continuation.size > MAX_HEADER_BLOCK) {
      throw new ConnectionError(Http2ErrorCode.ENHANCE_YOUR_CALM, "Header block too large");
    }
    continuation.chunks.push(payload.slice());
    if ((flags & FLAG_END_HEADERS) === 0) return;
    this.#continuation = undefined;
    this.#headerBlock(
      streamId,
      continuation.endStream,
      concat(continuation.chunks, continuation.size),
    );
  }

  #headerBlock(streamId: number, endStream: boolean, block: Uint8Array): void {
    // Every block is decoded, whatever happens to its stream, to keep the HPACK table in step.
    const fields = this.#decoder.decode(block);
    const existing = this.#streams.get(streamId);
    if (existing !== undefined) {
      // Trailers from the client: they must end the stream (RFC 9113 §8.1).
      if (!endStream || existing.remoteEnded) {
        throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "HEADERS on an open stream");
      }
      return this.#remoteEnd(existing);
    }
    if (streamId % 2 === 0 || streamId <= this.#lastStreamId) {
      // A new stream must be client-initiated (odd) and above every earlier one (§5.1.1).
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `Invalid new stream ${streamId}`);
    }
    this.#lastStreamId = streamId;
    if (this.#draining) {
      this.#enqueue(
        frame(FRAME_RST_STREAM, 0, streamId, uint32Payload(Http2ErrorCode.REFUSED_STREAM)),
      );
      return;
    }
    if (this.#streams.size >= this.#options.maxConcurrentStreams) {
      // Over SETTINGS_MAX_CONCURRENT_STREAMS: refused, so the client may retry (§5.1.2).
      this.#enqueue(
        frame(FRAME_RST_STREAM, 0, streamId, uint32Payload(Http2ErrorCode.REFUSED_STREAM)),
      );
      return;
    }
    const state: StreamState = {
      id: streamId,
      headers: fields,
      chunks: [],
      bodyLength: 0,
      unacknowledged: 0,
      remoteEnded: false,
      dispatched: false,
      sendWindow: this.#peerInitialWindow,
      outbound: [],
      outboundOffset: 0,
      trailers: undefined,
      controller: new AbortController(),
      localEnded: false,
      streaming: this.#options.isStreaming?.(fields) ?? false,
      receiver: undefined,
    };
    this.#streams.set(streamId, state);
    if (state.streaming) {
      state.dispatched = true;
      this.#options.onRequest(this.#facade(state, new Uint8Array(0)));
    }
    if (endStream) this.#remoteEnd(state);
  }

  #onSettings(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) {
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    }
    if (flags & FLAG_ACK) {
      if (payload.length !== 0) {
        throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      }
      return;
    }
    if (payload.length % 6 !== 0) {
      throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "SETTINGS of the wrong size");
    }
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    for (let offset = 0; offset < payload.length; offset += 6) {
      const id = view.getUint16(offset);
      const value = view.getUint32(offset + 2);
      if (id === SETTINGS_ENABLE_PUSH && value > 1) {
        throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "Invalid SETTINGS_ENABLE_PUSH");
      } else if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) {
          throw new ConnectionError(
            Http2ErrorCode.FLOW_CONTROL_ERROR,
            "SETTINGS_INITIAL_WINDOW_SIZE too large",
          );
        }
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const state of this.#streams.values()) state.sendWindow += delta;
      } else if (id === SETTINGS_MAX_FRAME_SIZE) {
        if (value < 16_384 || value > 16_777_215) {
          throw new ConnectionError(
            Http2ErrorCode.PROTOCOL_ERROR,
            "Invalid SETTINGS_MAX_FRAME_SIZE",
          );
        }
        this.#peerMaxFrame = value;
      } else if (id === SETTINGS_HEADER_TABLE_SIZE) {
        // Our encoder never uses the dynamic table: any size the peer allows fits.
      }
    }
    this.#enqueue(frame(FRAME_SETTINGS, FLAG_ACK, 0));
    this.#resumeBlocked();
  }

  #onWindowUpdate(streamId: number, payload: Uint8Array): void {
    if (payload.length !== 4) {
      throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE of the wrong size");
    }
    const increment = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) {
        throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      }
      this.#connectionSendWindow += increment;
      if (this.#connectionSendWindow > MAX_WINDOW) {
        throw new ConnectionError(Http2ErrorCode.FLOW_CONTROL_ERROR, "Connection window overflow");
      }
    } else {
      const state = this.#streams.get(streamId);
      if (state === undefined) return;
      if (increment === 0) return this.#resetStream(state, Http2ErrorCode.PROTOCOL_ERROR);
      state.sendWindow += increment;
      if (state.sendWindow > MAX_WINDOW) {
        return this.#resetStream(state, Http2ErrorCode.FLOW_CONTROL_ERROR);
      }
    }
    this.#resumeBlocked();
  }

  #remoteEnd(state: StreamState): void {
    state.remoteEnded = true;
    if (state.streaming) {
      state.receiver?.onEnd();
      return;
    }
    if (state.dispatched) return;
    state.dispatched = true;
    const body = state.chunks.length === 1
      ? state.chunks[0]
      : concat(state.chunks, state.bodyLength);
    state.chunks = [];
    this.#options.onRequest(this.#facade(state, body));
  }

  #dispatchOversized(state: StreamState): void {
    state.remoteEnded = true;
    state.dispatched = true;
    state.chunks = [];
    this.#options.onOversized(this.#facade(state, new Uint8Array(0)));
  }

  #facade(state: StreamState, body: Uint8Array): Http2ServerStream {
    return {
      id: state.id,
      headers: state.headers,
      body,
      signal: state.controller.signal,
      respond: (headers) => {
        if (state.localEnded || this.#streams.get(state.id) !== state) return;
        this.#sendHeaders(state.id, encodeHeaders(headers), false);
      },
      write: (data) => {
        if (state.localEnded || this.#streams.get(state.id) !== state) return;
        state.outbound.push(data);
        this.#sendData(state);
      },
      end: (trailers) => {
        if (state.localEnded || this.#streams.get(state.id) !== state) return;
        state.localEnded = true;
        state.trailers = encodeHeaders(trailers);
        this.#sendData(state);
      },
      reset: (code) => {
        if (this.#streams.get(state.id) !== state) return;
        this.#resetStream(state, code);
      },
      receive: (receiver) => {
        state.receiver = receiver;
        for (const chunk of state.chunks.splice(0)) receiver.onData(chunk);
        if (state.remoteEnded) receiver.onEnd();
      },
    };
  }

  #resetStream(state: StreamState, code: number): void {
    this.#enqueue(frame(FRAME_RST_STREAM, 0, state.id, uint32Payload(code)));
    this.#endStream(state);
    state.controller.abort();
  }

  #sendHeaders(streamId: number, block: Uint8Array, endStream: boolean): void {
    const max = this.#peerMaxFrame;
    const end = endStream ? FLAG_END_STREAM : 0;
    if (block.length <= max) {
      this.#enqueue(frame(FRAME_HEADERS, FLAG_END_HEADERS | end, streamId, block));
      return;
    }
    this.#enqueue(frame(FRAME_HEADERS, end, streamId, block.subarray(0, max)));
    for (let offset = max; offset < block.length; offset += max) {
      const last = Math.min(block.length, offset + max);
      const flags = last === block.length ? FLAG_END_HEADERS : 0;
      this.#enqueue(frame(FRAME_CONTINUATION, flags, streamId, block.subarray(offset, last)));
    }
  }

  /** Sends queued DATA as the windows allow, then the trailers with END_STREAM. */
  #sendData(state: StreamState): void {
    while (state.outbound.length > 0) {
      const chunk = state.outbound[0];
      const remaining = chunk.length - state.outboundOffset;
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
      const out = new Uint8Array(9 + size);
      frameHeader(out, 0, size, FRAME_DATA, 0, state.id);
      out.set(chunk.subarray(state.outboundOffset, state.outboundOffset + size), 9);
      this.#enqueue(out);
      state.sendWindow -= size;
      this.#connectionSendWindow -= size;
      state.outboundOffset += size;
      if (state.outboundOffset === chunk.length) {
        state.outbound.shift();
        state.outboundOffset = 0;
      }
    }
    this.#blocked.delete(state);
    if (state.trailers !== undefined) {
      this.#sendHeaders(state.id, state.trailers, true);
      state.trailers = undefined;
      this.#endStream(state);
    }
  }

  #resumeBlocked(): void {
    for (const state of [...this.#blocked]) {
      if (this.#connectionSendWindow <= 0) return;
      this.#sendData(state);
    }
  }

  #endStream(state: StreamState): void {
    if (this.#streams.get(state.id) !== state) return;
    this.#streams.delete(state.id);
    this.#blocked.delete(state);
    state.outbound = [];
    this.#closeIfIdle();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    this.#blocked.clear();
    for (const state of streams) state.controller.abort();
    this.#options.onClose?.(this);
  }
}

function goawayPayload(lastStreamId: number, code: number): Uint8Array {
  const payload = new Uint8Array(8);
  const view = new DataView(payload.buffer);
  view.setUint32(0, lastStreamId & 0x7fffffff);
  view.setUint32(4, code);
  return payload;
}
