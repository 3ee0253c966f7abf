/**
 * The router's fast path for `tools/call`: recognises a plain, well-formed tool call and encodes its
 * answer on the wire without building an SDK server and transport per request (that cost about
 * two thirds of the router's CPU per call).
 *
 * Pure and conservative: {@linkcode recognizeToolCall} accepts only the exact shapes the official
 * SDK clients send (one JSON-RPC request, no batch; the headers both SDK transports check; the
 * 2026-07-28 `_meta` envelope with only the keys checked here). Anything else, and every error the
 * transports answer (406, 400, 415, `-32602` for a malformed envelope), is left to the SDK, so the
 * SDK stays the reference for conformance. The answers here are the SDK's own, byte for byte apart
 * from key order: a 2026-07-28 result carries `resultType` and the server's `_meta` like the SDK's
 * encoder adds, a 2025 one is the bare `CallToolResult`, and an unknown tool is `-32602`.
 */

/** The protocol revision whose requests carry the per-request `_meta` envelope. */
export const MODERN_PROTOCOL_VERSION = "2026-07-28";

const PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion";
const CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo";
const CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities";
const SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo";
const RESERVED_META_PREFIX = "io.modelcontextprotocol/";
const INVALID_PARAMS = -32602;

/** A JSON-RPC request id, as the SDK accepts it. */
export type RequestId = string | number;

/** A tool call the fast path can serve. */
export interface FastToolCall {
  /** `2025`: sessionful, `Mcp-Session-Id` names the session; `2026`: per-request envelope. */
  readonly era: "2025" | "2026";
  readonly id: RequestId;
  /** The tool's public name. */
  readonly name: string;
  /** The arguments object, `undefined` when the request has none. */
  readonly arguments: Record<string, unknown> | undefined;
  /** Set when the client asked for progress: the answer is then an event stream. */
  readonly progressToken: RequestId | undefined;
  /** The `Mcp-Session-Id` header of a 2025 call. */
  readonly sessionId: string | undefined;
}

/** What {@linkcode recognizeToolCall} reads of the HTTP request. */
export interface RequestHeaders {
  get(name: string): string | null;
}

/** Options of {@linkcode recognizeToolCall}. */
export interface RecognizeOptions {
  /** 2025-era protocol versions the SDK's transport accepts in `MCP-Protocol-Version`. */
  legacyVersions: readonly string[];
}

/**
 * Returns the tool call in `body` when the fast path may serve it, else `undefined` (the SDK then
 * serves the request, and answers its errors).
 */
export function recognizeToolCall(
  headers: RequestHeaders,
  body: unknown,
  options: RecognizeOptions,
): FastToolCall | undefined {
  if (!isPlainObject(body) || body.jsonrpc !== "2.0" || body.method !== "tools/call") {
    return undefined;
  }
  const id = body.id;
  if (typeof id !== "string" && !(typeof id === "number" && Number.isSafeInteger(id))) {
    return undefined;
  }
  const params = body.params;
  if (!isPlainObject(params) || typeof params.name !== "string") return undefined;
  const args = params.arguments;
  if (args !== undefined && !isPlainObject(args)) return undefined;
  const meta = params._meta;
  if (meta !== undefined && !isPlainObject(meta)) return undefined;
  const progressToken = meta?.progressToken;
  if (
    progressToken !== undefined && typeof progressToken !== "string" &&
    !(typeof progressToken === "number" && Number.isSafeInteger(progressToken))
  ) {
    return undefined;
  }
  // Both SDK transports refuse a POST that does not accept both answers, or is not JSON.
  const accept = headers.get("accept") ?? "";
  if (!accept.includes("application/json") || !accept.includes("text/event-stream")) {
    return undefined;
  }
  if (!(headers.get("content-type") ?? "").includes("application/json")) return undefined;
  const version = headers.get("mcp-protocol-version");
  const sessionId = headers.get("mcp-session-id");
  const common = { id, name: params.name, arguments: args, progressToken };
  if (meta !== undefined && PROTOCOL_VERSION_KEY in meta) {
    if (sessionId !== null || version !== MODERN_PROTOCOL_VERSION) return undefined;
    if (!isModernEnvelope(meta)) return undefined;
    // The modern transport checks that the routing headers repeat the body.
    if (headers.get("mcp-method") !== "tools/call" || headers.get("mcp-name") !== params.name) {
      return undefined;
    }
    return { era: "2026", sessionId: undefined, ...common };
  }
  if (sessionId === null) return undefined;
  if (version !== null && !options.legacyVersions.includes(version)) return undefined;
  if (meta !== undefined && Object.keys(meta).some((key) => key.startsWith(RESERVED_META_PREFIX))) {
    return undefined;
  }
  return { era: "2025", sessionId, ...common };
}

/**
 * The JSON-RPC answer to a call: the result, in the era's encoding. `outputSchema` is the tool's
 * advertised one: the result is projected by the SDK codecs' rules (`projectCallToolResult`): a
 * non-object `structuredContent` gets a text fallback, and in 2025 is wrapped as `{ result }`, as it
 * is when the schema's root is not an object.
 */
export function encodeResult(
  call: FastToolCall,
  result: Record<string, unknown>,
  serverInfo: { name: string; version: string },
  outputSchema?: Record<string, unknown>,
): string {
  const projected = projectResult(call.era, result, outputSchema);
  const wire = call.era === "2026"
    ? { ...projected, resultType: "complete", _meta: { [SERVER_INFO_KEY]: serverInfo } }
    : projected;
  return JSON.stringify({ jsonrpc: "2.0", id: call.id, result: wire });
}

function projectResult(
  era: FastToolCall["era"],
  result: Record<string, unknown>,
  outputSchema: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const structured = result.structuredContent;
  if (structured === undefined) return result;
  const nonObject = !isPlainObject(structured);
  let projected = result;
  const content = Array.isArray(result.content) ? result.content as { type?: unknown }[] : [];
  if (nonObject && !content.some((block) => block?.type === "text")) {
    projected = {
      ...result,
      content: [...content, { type: "text", text: JSON.stringify(structured) }],
    };
  }
  if (
    era === "2025" && (nonObject || (outputSchema !== undefined && outputSchema.type !== "object"))
  ) {
    projected = { ...projected, structuredContent: { result: structured } };
  }
  return projected;
}

/** The JSON-RPC error for a tool the catalog does not have, as the SDK words it. */
export function encodeUnknownTool(call: FastToolCall): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id: call.id,
    error: { code: INVALID_PARAMS, message: `Unknown tool "${call.name}"` },
  });
}

/** A `notifications/progress` message for the call's progress token. */
export function encodeProgress(
  call: FastToolCall,
  progress: { progress: number; total?: number; message?: string },
): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    method: "notifications/progress",
    params: { progressToken: call.progressToken, ...progress },
  });
}

/** One server-sent event carrying a JSON-RPC message, as the SDK transports frame them. */
export function sseEvent(message: string): string {
  return `event: message\ndata: ${message}\n\n`;
}

function isModernEnvelope(meta: Record<string, unknown>): boolean {
  if (meta[PROTOCOL_VERSION_KEY] !== MODERN_PROTOCOL_VERSION) return false;
  if (!isPlainObject(meta[CLIENT_CAPABILITIES_KEY])) return false;
  const clientInfo = meta[CLIENT_INFO_KEY];
  if (
    clientInfo !== undefined &&
    !(isPlainObject(clientInfo) && typeof clientInfo.name === "string" &&
      typeof clientInfo.version === "string")
  ) {
    return false;
  }
  // Other envelope keys have rules of their own: the SDK checks them.
  for (const key of Object.keys(meta)) {
    if (
      key.startsWith(RESERVED_META_PREFIX) && key !== PROTOCOL_VERSION_KEY &&
      key !== CLIENT_INFO_KEY && key !== CLIENT_CAPABILITIES_KEY
    ) {
      return false;
    }
  }
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
