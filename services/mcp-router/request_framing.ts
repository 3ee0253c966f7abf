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
const encoder = new TextEncoder();

/**
 * Parses the head at the start of `buffer`. The fields of `added` (lower-case names, such as
 * {@linkcode PEER_HEADER}) are appended, and the client's own fields of those names dropped.
 */
export function parseHead(
  buffer: Uint8Array,
  added: Readonly<Record<string, string>>,
  maxBytes: number,
): HeadResult {
  // RFC 9112 §2.2: empty lines before the request line are ignored.
  let start = 0;
  while (start + 1 < buffer.length && buffer[start] === CR && buffer[start + 1] === LF) start += 2;
  const end = indexOfBlankLine(buffer, start, Math.min(buffer.length, start + maxBytes));
  if (end < 0) {
    if (buffer.length - start >= maxBytes) {
      return { kind: "error", status: 431, message: "Request header block is too large" };
    }
    return hasBareLineBreak(buffer, start, buffer.length)
      ? { kind: "error", status: 400, message: "Bare CR or LF in the request head" }
      : { kind: "incomplete" };
  }
  // Lines are [start, end) each ending in CRLF; `end` points at the final CRLF.
  const lines: [number, number][] = [];
  let lineStart = start;
  for (let i = start; i < end + 2; i++) {
    const byte = buffer[i];
    if (byte === LF) {
      if (i === lineStart || buffer[i - 1] !== CR) return badHead("Bare LF in the request head");
      lines.push([lineStart, i - 1]);
      lineStart = i + 1;
    } else if (byte === CR && buffer[i + 1] !== LF) return badHead("Bare CR in the request head");
  }
  const requestLine = latin1(buffer, lines[0][0], lines[0][1]);
  if (!REQUEST_LINE.test(requestLine)) return badHead("Malformed request line");
  const http10 = requestLine.endsWith("HTTP/1.0");
  let contentLength: number | undefined;
  let chunked = false;
  const kept: Uint8Array[] = [buffer.subarray(lines[0][0], lines[0][1] + 2)];
  for (const [from, to] of lines.slice(1, -1)) {
    if (buffer[from] === 0x20 || buffer[from] === 0x09) return badHead("Obsolete line folding");
    const line = latin1(buffer, from, to);
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) return badHead("Malformed header field");
    const lower = name.toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (Object.hasOwn(added, lower)) continue;
    if (lower === "content-length") {
      if (contentLength !== undefined || !/^\d{1,15}$/.test(value)) {
        return badHead("Malformed or repeated Content-Length");
      }
      contentLength = Number(value);
    } else if (lower === "transfer-encoding") {
      if (chunked || value.toLowerCase() !== "chunked" || http10) {
        return badHead("Unsupported Transfer-Encoding");
      }
      chunked = true;
    }
    kept.push(buffer.subarray(from, to + 2));
  }
  if (chunked && contentLength !== undefined) {
    return badHead("Both Content-Length and Transfer-Encoding");
  }
  let fields = "";
  for (const [name, value] of Object.entries(added)) fields += `${name}: ${value}\r\n`;
  kept.push(encoder.encode(`${fields}\r\n`));
  const head = new Uint8Array(kept.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of kept) {
    head.set(part, at);
    at += part.length;
  }
  const body: BodyFraming = chunked
    ? { kind: "chunked" }
    : contentLength
    ? { kind: "length", length: contentLength }
    : { kind: "none" };
  return { kind: "head", consumed: end + 2, head, body };
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

/** The offset of the CRLF that ends the head (the second of CRLF CRLF), or -1. */
function indexOfBlankLine(buffer: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (
      buffer[i] === CR && buffer[i + 1] === LF && buffer[i + 2] === CR && buffer[i + 3] === LF
    ) return i + 2;
  }
  return -1;
}

function hasBareLineBreak(buffer: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    if (buffer[i] === LF && (i === from || buffer[i - 1] !== CR)) return true;
    if (buffer[i] === CR && i + 1 < to && buffer[i + 1] !== LF) return true;
  }
  return false;
}

// Only for checks (names, lengths, encodings are ASCII); the bytes forwarded are the client's own.
const decoder = new TextDecoder("latin1");

function latin1(buffer: Uint8Array, from: number, to: number): string {
  return decoder.decode(buffer.subarray(from, to));
}
