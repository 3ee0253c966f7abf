/**
 * HTTP/1.1 request heads and bodies (RFC 9112), as the connection guard reads them: pure, over
 * bytes. It is strict wherever a lenient parser and a proxy in front (HAProxy) could disagree about
 * where a request ends (request smuggling): a bare CR or LF, an obsolete line fold, a malformed or
 * repeated `Content-Length`, any `Transfer-Encoding` other than one `chunked`, both headers, a
 * missing or repeated `Host` on HTTP/1.1, or a control character in a field value, are refused
 * (400) instead of guessed at.
 */

/** How a request's body is delimited. */
export type BodyFraming =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" };

/** A parsed request head. */
export interface RequestHead {
  readonly kind: "head";
  /** Bytes of the buffer the head took (leading empty lines included). */
  readonly consumed: number;
  readonly method: string;
  /** The request target as sent (origin-form, absolute-form or `*`). */
  readonly target: string;
  readonly http10: boolean;
  /** The `Host` field's value; empty when an HTTP/1.0 request has none. */
  readonly host: string;
  /** Field lines in order, names as sent, values without surrounding whitespace. */
  readonly fields: [string, string][];
  readonly body: BodyFraming;
  /** Whether the client asked to keep the connection open after this request (RFC 9112 §9.3). */
  readonly keepAlive: boolean;
  /** `Expect: 100-continue` on HTTP/1.1 (RFC 9110 §10.1.1; HTTP/1.0 ignores it). */
  readonly expectContinue: boolean;
}

/** What {@linkcode parseHead} found. */
export type HeadResult =
  | { readonly kind: "incomplete" }
  | { readonly kind: "error"; readonly status: 400 | 417 | 431; readonly message: string }
  | RequestHead;

const CR = 0x0d;
const LF = 0x0a;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\s]+) HTTP\/1\.([01])$/;
const BARE_LINE_BREAK = /\r(?!\n)|(?<!\r)\n/;
// RFC 9110 §5.5: field values with CR, LF or NUL must be refused; other controls too (only HTAB is
// allowed whitespace inside a value).
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
// RFC 3986 host [":" port]: reg-name or IP literal characters only.
const HOST = /^[A-Za-z0-9\-._~!$&'()*+,;=%:\[\]]*$/;
// One byte is one character: string offsets are byte offsets, and obs-text survives as Latin-1.
const decoder = new TextDecoder("latin1");

/** Parses the request head at the start of `buffer`, of at most `maxBytes`. */
export function parseHead(buffer: Uint8Array, maxBytes: number): HeadResult {
  // RFC 9112 §2.2: empty lines before the request line are ignored.
  let start = 0;
  while (buffer[start] === CR && buffer[start + 1] === LF) start += 2;
  const blank = findBlankLine(buffer, start, start + maxBytes);
  if (blank < 0) {
    if (buffer.length - start >= maxBytes) {
      return { kind: "error", status: 431, message: "Request header block is too large" };
    }
    // A bare CR or LF before the head is complete: no need to wait for the rest.
    const text = decoder.decode(buffer.subarray(start));
    return BARE_LINE_BREAK.test(text.endsWith("\r") ? text.slice(0, -1) : text)
      ? { kind: "error", status: 400, message: "Bare CR or LF in the request head" }
      : { kind: "incomplete" };
  }
  // The head's lines, each ending in CRLF, are [start, blank + 2).
  const head = decoder.decode(buffer.subarray(start, blank));
  if (BARE_LINE_BREAK.test(head)) return badHead("Bare CR or LF in the request head");
  const lines = head.split("\r\n");
  const requestLine = REQUEST_LINE.exec(lines[0]);
  if (requestLine === null) return badHead("Malformed request line");
  const [, method, target] = requestLine;
  const http10 = requestLine[3] === "0";
  if (!validTarget(method, target)) return badHead("Malformed request target");
  let contentLength: number | undefined;
  let chunked = false;
  let host: string | undefined;
  let close = false;
  let keepAliveToken = false;
  let expect: string | undefined;
  const fields: [string, string][] = [];
  for (let index = 1; index < lines.length; index++) {
    const line = lines[index];
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) return badHead("Obsolete line folding");
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) return badHead("Malformed header field");
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE.test(value)) return badHead("Control character in a header field value");
    fields.push([name, value]);
    switch (name.toLowerCase()) {
      case "content-length":
        if (contentLength !== undefined || !/^\d{1,15}$/.test(value)) {
          return badHead("Malformed or repeated Content-Length");
        }
        contentLength = Number(value);
        break;
      case "transfer-encoding":
        if (chunked || value.toLowerCase() !== "chunked" || http10) {
          return badHead("Unsupported Transfer-Encoding");
        }
        chunked = true;
        break;
      case "host":
        // RFC 9112 §3.2: more than one Host, or an invalid one, is a 400.
        if (host !== undefined || !HOST.test(value)) return badHead("Malformed or repeated Host");
        host = value;
        break;
      case "connection":
        for (const option of value.toLowerCase().split(",")) {
          const token = option.trim();
          if (token === "close") close = true;
          else if (token === "keep-alive") keepAliveToken = true;
        }
        break;
      case "expect":
        expect = expect === undefined ? value : `${expect}, ${value}`;
        break;
    }
  }
  if (chunked && contentLength !== undefined) {
    return badHead("Both Content-Length and Transfer-Encoding");
  }
  if (host === undefined && !http10) return badHead("Missing Host");
  let expectContinue = false;
  if (expect !== undefined && !http10) {
    // RFC 9110 §10.1.1: an expectation the server cannot meet is a 417.
    if (expect.toLowerCase() !== "100-continue") {
      return { kind: "error", status: 417, message: "Unsupported expectation" };
    }
    expectContinue = true;
  }
  return {
    kind: "head",
    consumed: blank + 4,
    method,
    target,
    http10,
    host: host ?? "",
    fields,
    body: chunked
      ? { kind: "chunked" }
      : contentLength
      ? { kind: "length", length: contentLength }
      : { kind: "none" },
    // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    keepAlive: !close && (!http10 || keepAliveToken),
    expectContinue,
  };
}

/** Where the CRLF CRLF ending a head begins in `buffer[from, limit + 4)`, or -1. */
function findBlankLine(buffer: Uint8Array, from: number, limit: number): number {
  const end = Math.min(buffer.length, limit + 4);
  let at = from;
  for (;;) {
    const lf = buffer.indexOf(LF, at + 1);
    if (lf < 0 || lf + 2 >= end) return -1;
    if (buffer[lf - 1] === CR && buffer[lf + 1] === CR && buffer[lf + 2] === LF) return lf - 1;
    at = lf;
  }
}

/** RFC 9112 §3.2: origin-form, absolute-form (http or https), or `*` for OPTIONS only. */
function validTarget(method: string, target: string): boolean {
  if (target.charCodeAt(0) === 0x2f) return true;
  if (target === "*") return method === "OPTIONS";
  return /^https?:\/\/[^/?#]/i.test(target);
}

/** Where a chunked body ends, and which of its bytes are data: feed it bytes as they come. */
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
   * inside), or an error message for a malformed body. `onData` is given each range of chunk data
   * (extensions and trailer fields are dropped, RFC 9112 §7.1.1 and §7.1.2).
   */
  scan(
    bytes: Uint8Array,
    from = 0,
    onData?: (start: number, end: number) => void,
  ): number | string {
    let i = from;
    while (i < bytes.length && this.#state !== "done") {
      switch (this.#state) {
        case "data": {
          const take = Math.min(this.#remaining, bytes.length - i);
          onData?.(i, i + take);
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
      else if (line.charCodeAt(0) === 0x20 || line.charCodeAt(0) === 0x09) {
        return "Obsolete line folding in a trailer";
      }
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
