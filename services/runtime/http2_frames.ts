/**
 * What both ends of the platform's HTTP/2 share (RFC 9113): the connection preface, frame types,
 * flags and settings identifiers, the protocol's window and frame limits, and frame encoding.
 * `http2_session.ts` (the gRPC channel's client side) and `http2_server.ts` (the gRPC server) each
 * keep their own state machine; only these wire facts live here.
 */

/** The client connection preface (§3.4). */
export const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

// Frame types (§6).
export const FRAME_DATA = 0x0;
export const FRAME_HEADERS = 0x1;
export const FRAME_PRIORITY = 0x2;
export const FRAME_RST_STREAM = 0x3;
export const FRAME_SETTINGS = 0x4;
export const FRAME_PUSH_PROMISE = 0x5;
export const FRAME_PING = 0x6;
export const FRAME_GOAWAY = 0x7;
export const FRAME_WINDOW_UPDATE = 0x8;
export const FRAME_CONTINUATION = 0x9;

// Flags (§6; ACK shares END_STREAM's bit on SETTINGS and PING).
export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

// SETTINGS identifiers (§6.5.2).
export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** Initial flow-control window of a stream and of the connection (§6.9.2). */
export const DEFAULT_WINDOW = 65_535;
/** The largest a flow-control window may grow (§6.9.1). */
export const MAX_WINDOW = 2 ** 31 - 1;
/** The frame size we accept: the protocol's default, which neither end raises (§4.2). */
export const MAX_INBOUND_FRAME = 16_384;
/** The largest stream identifier (§5.1.1); a GOAWAY naming it keeps every stream. */
export const LAST_STREAM_ID = 2 ** 31 - 1;

/** Writes a 9-octet frame header (§4.1) into `out` at `offset`; the reserved bit is cleared. */
export function frameHeader(
  out: Uint8Array,
  offset: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  out[offset] = length >>> 16;
  out[offset + 1] = (length >>> 8) & 0xff;
  out[offset + 2] = length & 0xff;
  out[offset + 3] = type;
  out[offset + 4] = flags;
  out[offset + 5] = (streamId >>> 24) & 0x7f;
  out[offset + 6] = (streamId >>> 16) & 0xff;
  out[offset + 7] = (streamId >>> 8) & 0xff;
  out[offset + 8] = streamId & 0xff;
}

/** One whole frame: header and payload. */
export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload?: Uint8Array,
): Uint8Array {
  const length = payload?.length ?? 0;
  const out = new Uint8Array(9 + length);
  frameHeader(out, 0, length, type, flags, streamId);
  if (payload) out.set(payload, 9);
  return out;
}

/** A 4-octet big-endian payload (WINDOW_UPDATE increment, RST_STREAM error code). */
export function uint32Payload(value: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, value);
  return payload;
}

/** `chunks` joined into one array of `total` bytes. */
export function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
