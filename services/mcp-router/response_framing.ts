/**
 * HTTP/1.1 response heads (RFC 9112), as the connection guard writes them: pure. The handler's
 * `Response` says status and fields; the guard decides the framing and the connection's fate, so
 * the handler's own hop-by-hop fields are dropped (RFC 9110 §7.6.1).
 */

/** How a response's body is delimited on the wire. */
export type ResponseFraming =
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  /** Read until the connection closes (HTTP/1.0 peers, which know no chunked coding). */
  | { readonly kind: "close" }
  /** No body and no length field: HEAD answers of unknown length, 204 and 304. */
  | { readonly kind: "none" };

/** Options of {@linkcode responseHead}. */
export interface ResponseHeadOptions {
  framing: ResponseFraming;
  /** Whether the connection stays open after this response. */
  keepAlive: boolean;
  /** The request was HTTP/1.0: a kept connection says so (RFC 9112 §9.3). */
  http10: boolean;
  /** The `Date` field's value (RFC 9110 §6.6.1). */
  date: string;
}

/** Fields the handler may not set: the guard owns framing and connection management. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "content-length",
  "upgrade",
  "te",
  "trailer",
]);

const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  417: "Expectation Failed",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** The status line and field lines of `response`, ending with the blank line. */
export function responseHead(
  response: { status: number; statusText: string; headers: Headers },
  options: ResponseHeadOptions,
): string {
  const reason = response.statusText || REASONS[response.status] || "";
  let head = `HTTP/1.1 ${response.status} ${reason}\r\n`;
  let dated = false;
  for (const [name, value] of response.headers) {
    if (HOP_BY_HOP.has(name)) continue;
    if (name === "date") dated = true;
    head += `${name}: ${value}\r\n`;
  }
  if (!dated) head += `date: ${options.date}\r\n`;
  const { framing } = options;
  if (framing.kind === "length") head += `content-length: ${framing.length}\r\n`;
  else if (framing.kind === "chunked") head += "transfer-encoding: chunked\r\n";
  if (!options.keepAlive || framing.kind === "close") head += "connection: close\r\n";
  else if (options.http10) head += "connection: keep-alive\r\n";
  return head + "\r\n";
}

/** Whether a response to `method` with `status` has no body (RFC 9110 §6.4.1). */
export function bodiless(method: string, status: number): boolean {
  return method === "HEAD" || status === 204 || status === 304 || status < 200;
}

/** An answer the guard writes itself (408, 400, 413, 417, 431), closing the connection. */
export function errorAnswer(status: number, message: string, date: string): string {
  const body = JSON.stringify({ jsonrpc: "2.0", error: { code: -32600, message }, id: null });
  const headers = new Headers({ "content-type": "application/json" });
  return responseHead({ status, statusText: "", headers }, {
    framing: { kind: "length", length: new TextEncoder().encode(body).length },
    keepAlive: false,
    http10: false,
    date,
  }) + body;
}
