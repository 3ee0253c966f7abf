/**
 * HTTP/1.1 request framing (RFC 9112), as much as the connection guard needs to know where a
 * request's header block and body end: pure, over bytes. It is strict where a lenient parser and
 * hyper (behind it) could disagree about where a request ends (request smuggling): a bare CR or LF,
 * an obsolete line fold, a malformed or repeated `Content-Length`, any `Transfer-Encoding` other
 * than one `chunked`, or both headers, are refused (400) instead of guessed at.
 */

/** The header the guard adds with the connection's source address; a client's own is dropped. */
export const PEER_HEADER = "x-router-peer";
/** The header the guard adds with its ID of the client connection; a client's own is dropped. */
export const CONNECTION_HEADER = "x-router-connection";

/** How a request's body is delimited. */
export type BodyFraming =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" };

/** What {@linkcode parseHead} found. */
export type HeadResult =
  | { readonly kind: "incomplete" }
  | { readonly kind: "error"; readonly status: 400 | 431; readonly message: string }
  | {
    readonly kind: "head";
    /** Bytes of the buffer the head took (leading empty lines included). */
    readonly consumed: number;
    /** The head to forward: the client's, without its peer header, with the guard's. */
    readonly head: Uint8Array;
    readonly body: BodyFraming;
  };

const CR = 0x0d;
const LF = 0x0a;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^\s]+ HTTP\/1\.[01]$/;
const BARE_LINE_BREAK = /\r(?!\n)|(?<!\r)\n/;
const encoder = new TextEncoder();
// Only for checks (names, lengths, encodings are ASCII); the bytes forwarded are the client's own.
// One byte is one character, so string offsets are byte offsets.
const decoder = new TextDecoder("latin1");

/** Header fields the guard adds to every head of a connection, encoded once. */
export interface HeadAddition {
  /** Lower-case names: a client's own fields of these names are dropped. */
  readonly names: ReadonlySet<string>;
  /** `name: value\r\n` lines. */
  readonly bytes: Uint8Array;
}

/** The {@linkcode HeadAddition} of `fields` (lower-case names). */
export function headAddition(fields: Readonly<Record<string, string>>): HeadAddition {
  let lines = "";
  for (const [name, value] of Object.entries(fields)) lines += `${name}: ${value}\r\n`;
  return { names: new Set(Object.keys(fields)), bytes: encoder.encode(lines) };
}

/**
 * Parses the head at the start of `buffer`: the head to forward carries `added`'s fields, and
 * none of the client's own fields of those names.
 */
export function parseHead(
  buffer: Uint8Array,
  added: HeadAddition,
  maxBytes: number,
): HeadResult {
  const text = decoder.decode(buffer.subarray(0, Math.min(buffer.length, maxBytes + 4)));
  // RFC 9112 §2.2: empty lines before the request line are ignored.
  let start = 0;
  while (text.startsWith("\r\n", start)) start += 2;
  const blank = text.indexOf("\r\n\r\n", start);
  if (blank < 0 || blank + 4 - start > maxBytes) {
    if (buffer.length - start >= maxBytes) {
      return { kind: "error", status: 431, message: "Request header block is too large" };
    }
    // A bare CR or LF before the head is complete: no need to wait for the rest.
    return BARE_LINE_BREAK.test(text.slice(start, text.endsWith("\r") ? -1 : undefined))
      ? { kind: "error", status: 400, message: "Bare CR or LF in the request head" }
      : { kind: "incomplete" };
  }
  // The head is [start, end); `end` is where the blank line's CRLF begins.
  const end = blank + 2;
  const head = text.slice(start, end);
  if (BARE_LINE_BREAK.test(head)) return badHead("Bare CR or LF in the request head");
  const lines = head.slice(0, -2).split("\r\n");
  if (!REQUEST_LINE.test(lines[0])) return badHead("Malformed request line");
  const http10 = lines[0].endsWith("HTTP/1.0");
  let contentLength: number | undefined;
  let chunked = false;
  /** Byte ranges of the client's fields that are dropped. */
  const dropped: [number, number][] = [];
  let at = start + lines[0].length + 2;
  for (let index = 1; index < lines.length; index++) {
    const line = lines[index];
    const from = at;
    at += line.length + 2;
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) return badHead("Obsolete line folding");
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) return badHead("Malformed header field");
    const lower = name.toLowerCase();
    if (added.names.has(lower)) {
      dropped.push([from, at]);
      continue;
    }
    if (lower === "content-length") {
      const value = line.slice(colon + 1).trim();
      if (contentLength !== undefined || !/^\d{1,15}$/.test(value)) {
        return badHead("Malformed or repeated Content-Length");
      }
      contentLength = Number(value);
    } else if (lower === "transfer-encoding") {
      const value = line.slice(colon + 1).trim();
      if (chunked || value.toLowerCase() !== "chunked" || http10) {
        return badHead("Unsupported Transfer-Encoding");
      }
      chunked = true;
    }
  }
  if (chunked && contentLength !== undefined) {
    return badHead("Both Content-Length and Transfer-Encoding");
  }
  const body: BodyFraming = chunked
    ? { kind: "chunked" }
    : contentLength
    ? { kind: "length", length: contentLength }
    : { kind: "none" };
  return {
    kind: "head",
    consumed: end + 2,
    head: forwarded(buffer, start, end, dropped, added),
    body,
  };
}

/** The head's bytes without the dropped ranges, with the added fields and the blank line. */
function forwarded(
  buffer: Uint8Array,
  start: number,
  end: number,
  dropped: readonly [number, number][],
  added: HeadAddition,
): Uint8Array {
  const kept: [number, number][] = [];
  let from = start;
  for (const [dropFrom, dropTo] of dropped) {
    kept.push([from, dropFrom]);
    from = dropTo;
  }
  kept.push([from, end]);
  const size = kept.reduce((total, [a, b]) => total + b - a, 0) + added.bytes.length + 2;
  const out = new Uint8Array(size);
  let at = 0;
  for (const [a, b] of kept) {
    out.set(buffer.subarray(a, b), at);
    at += b - a;
  }
  out.set(added.bytes, at);
  out[size - 2] = CR;
  out[size - 1] = LF;
  return out;
}

/** Where a chunked body ends: feed it bytes as they come. */
export class ChunkedBodyScanner {
  #state: "size" | "data" | "data-cr" | "data-lf" | "trailer" | "done" = "size";
  #line = 0;
  #lineBytes: number[] = [];
  #remaining = 0;
  #trailerBytes = 0;

  /** Whether the last chunk and the trailer section have been seen. */
  get done(): boolean {
    return this.#state === "done";
  }

  /**
   * Scans `bytes` from `from`; returns how many belong to the body (all of them unless it ended
   * inside), or an error message for a malformed body.
   */
  scan(bytes: Uint8Array, from = 0): number | string {
    let i = from;
    while (i < bytes.length && this.#state !== "done") {
      switch (this.#state) {
        case "data": {
          const take = Math.min(this.#remaining, bytes.length - i);
          this.#remaining -= take;
          i += take;
          if (this.#remaining === 0) this.#state = "data-cr";
          break;
        }
        case "data-cr":
          if (bytes[i++] !== CR) return "Chunk data not followed by CRLF";
          this.#state = "data-lf";
          break;
        case "data-lf":
          if (bytes[i++] !== LF) return "Chunk data not followed by CRLF";
          this.#state = "size";
          break;
        default: {
          const byte = bytes[i++];
          if (this.#state === "trailer") this.#trailerBytes++;
          if (this.#trailerBytes > 8192) return "Chunked trailer section too large";
          if (byte !== LF) {
            if (++this.#line > 4096) return "Chunk size line too long";
            this.#lineBytes.push(byte);
            break;
          }
          const line = this.#lineBytes;
          this.#lineBytes = [];
          this.#line = 0;
          if (line.pop() !== CR) return "Bare LF in a chunked body";
          if (line.includes(CR)) return "Bare CR in a chunked body";
          const error = this.#endLine(String.fromCharCode(...line));
          if (error !== undefined) return error;
        }
      }
    }
    return i - from;
  }

  #endLine(line: string): string | undefined {
    if (this.#state === "trailer") {
      if (line === "") this.#state = "done";
      return undefined;
    }
    const size = line.split(";", 1)[0];
    if (!/^[0-9A-Fa-f]{1,12}$/.test(size)) return "Malformed chunk size";
    this.#remaining = parseInt(size, 16);
    this.#state = this.#remaining === 0 ? "trailer" : "data";
    return undefined;
  }
}

function badHead(message: string): HeadResult {
  return { kind: "error", status: 400, message };
}
