/**
 * The `/mcp` endpoint: one per-request MCP server factory serving both protocol eras.
 *
 * - 2026-07-28 requests (per-request `_meta` envelope) go to the SDK's `createMcpHandler`, which
 *   owns `server/discover`, the `Mcp-Method`/`Mcp-Name` header checks and `subscriptions/listen`.
 * - 2025-era requests (`isLegacyRequest`) are sessionful: `initialize` mints a sealed session token
 *   as `Mcp-Session-Id`; every later request opens the token and is served by a fresh server over
 *   the SDK's stateless transport, so any router replica can serve any session.
 *
 * The body is read and parsed once, here, and handed to the SDK as `parsedBody`: no clone, no second
 * read, no rebuilt request on the hot path. A plain `tools/call` (the hot path) does not reach the
 * SDK at all: `tool_call_fast_path.ts` recognises it, the session is checked, the gateway calls the
 * backend and the answer is encoded here, as JSON, or as an event stream when progress is asked for.
 */
import {
  createMcpHandler,
  inputRequired,
  isLegacyRequest,
  LATEST_PROTOCOL_VERSION,
  type ListToolsResult,
  LOG_LEVEL_META_KEY,
  type McpHttpHandler,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  SUPPORTED_PROTOCOL_VERSIONS,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import type { Logger } from "../runtime/logger.ts";
import { type Catalog, listTools } from "./catalog.ts";
import { jsonRpcError } from "./http_guard.ts";
import { type CallTicket, type ClientLimits, isRefusal, type Refusal } from "./client_limits.ts";
import { type ListeningStreams, whenBodyEnds } from "./listening_streams.ts";
import { NotificationStream } from "./notification_stream.ts";
import type { Counter, MetricsRegistry } from "../runtime/metrics.ts";
import { randomSessionId, type SessionClaims, type SessionCodec } from "./session_token.ts";
import { clientKey } from "./client_rate_limit.ts";
import type {
  CallLog,
  CallProgress,
  ClientRequester,
  ToolGateway,
  ToolResult,
} from "./tool_gateway.ts";
import { ClientRequests, isResponseBatch } from "./client_requests.ts";
import {
  InputRequiredCalls,
  type RoundOutcome,
  UnknownStateError,
} from "./input_required_calls.ts";
import { registerSurface, surfaceCapabilities, type SurfaceDependencies } from "./mcp_surface.ts";
import { isLogLevel, passes } from "./session_log_levels.ts";
import type { McpLogLevel } from "../runtime/tool.ts";
import {
  encodeProgress,
  encodeResult,
  encodeUnknownTool,
  type FastToolCall,
  MODERN_PROTOCOL_VERSION,
  recognizeToolCall,
  sseEvent,
} from "./tool_call_fast_path.ts";

/** Sessions ended with DELETE: refused afterwards by every replica that knows. */
export interface EndedSessions {
  /** Whether ended sessions were read once; until then a session cannot be checked. */
  readonly loaded: boolean;
  has(sid: string): boolean;
  /** Ends a session for `client` (who pays for it), or says why not now. */
  end(session: { sid: string; issuedAt: number }, client: string): Promise<EndDecision>;
}

/** The outcome of {@linkcode EndedSessions.end}: ended, or an answer saying when to retry. */
export type EndDecision = { readonly ended: true } | {
  readonly ended: false;
  readonly status: 429 | 503;
  readonly retryAfterSeconds: number;
  readonly message: string;
};

/** Options of {@linkcode McpEndpoint}. */
export interface McpEndpointOptions {
  /** The current catalog. */
  catalog: () => Catalog;
  gateway: ToolGateway;
  sessions: SessionCodec;
  ended: EndedSessions;
  logger: Logger;
  maxBodyBytes: number;
  serverInfo: { name: string; version: string };
  /** The clock, for session issue times; default `Date.now`. */
  now?: () => number;
  /** Resources, prompts, completion, subscriptions and log levels. */
  surface: SurfaceDependencies;
  /** How long a tool's request may wait for the client's answer; default 60 s. */
  clientRequestTimeoutMs?: number;
  /** Where tool calls are counted by the path that served them (fast or SDK). */
  metrics?: MetricsRegistry;
  /** Batch, stream and slow-body limits; none without. */
  limits?: EndpointLimits;
}

/** The limits the endpoint applies itself (`limit_settings.ts`). */
export interface EndpointLimits {
  /** Per-client admission; streams count against the client's stream limit. */
  clients: ClientLimits;
  /** Listening streams, capped per session and in total. */
  streams: ListeningStreams;
  /** Messages in one JSON-RPC batch. */
  maxBatch: number;
  /** A POST body must arrive within this, in milliseconds. */
  bodyTimeoutMs: number;
  /** SSE comment lines on quiet streams this often, in milliseconds. */
  heartbeatMs: number;
  /** Counts a refusal by its reason. */
  onRefused(refusal: Refusal): void;
}

/** Who sent a request and the calls admitted for it; the endpoint gives them back. */
export interface RequestBudget {
  /** The client's key (token digest or address). */
  client: string;
  /** The request's first call, admitted by the caller; none for GET. */
  ticket?: CallTicket;
  /** Aborts when the client's connection closes, where `request.signal` may not. */
  connectionClosed?: AbortSignal;
}

/** What a server instance serves: a 2025 session, or none (2026-07-28). */
interface ServeContext {
  session?: SessionClaims;
  /** The 2025 transport of this exchange, which carries the tool's requests to the client. */
  transport?: WebStandardStreamableHTTPServerTransport;
  /** Aborts when the client's connection closes (the guard's signal). */
  connectionClosed?: AbortSignal;
}

/** Serves MCP on one endpoint for both protocol eras. */
export class McpEndpoint {
  readonly #options: McpEndpointOptions;
  readonly #modern: McpHttpHandler;
  /** Open 2025 GET streams, with the session each belongs to. */
  readonly #listeners = new Map<NotificationStream, string>();
  /** Requests of tools sent to 2025 clients, waiting for the answer on a later POST. */
  readonly #clientRequests: ClientRequests;
  /** Interactive calls of 2026-07-28 clients, parked between rounds. */
  readonly #parked: InputRequiredCalls;
  /** Calls in flight on this replica by session and JSON-RPC id, for `notifications/cancelled`. */
  readonly #inFlight = new Map<string, AbortController>();
  readonly #now: () => number;
  readonly #callsByPath: Counter | undefined;
  readonly #recognize = {
    legacyVersions: SUPPORTED_PROTOCOL_VERSIONS.filter((v) => v !== MODERN_PROTOCOL_VERSION),
  };

  constructor(options: McpEndpointOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#clientRequests = new ClientRequests(options.clientRequestTimeoutMs ?? 60_000);
    this.#parked = new InputRequiredCalls({ timeoutMs: options.clientRequestTimeoutMs ?? 60_000 });
    this.#callsByPath = options.metrics?.counter(
      "mcp_router_tool_calls_by_path_total",
      "Tool calls by the path that served them: fast (no SDK objects) or sdk.",
    );
    this.#modern = createMcpHandler(() => this.#createServer({}), {
      legacy: "reject",
      maxRequestBodySize: options.maxBodyBytes,
      ...(options.limits
        ? {
          keepAliveMs: options.limits.heartbeatMs,
          // The router's own cap (ListeningStreams) decides; the SDK's must not be lower.
          maxSubscriptions: options.limits.streams.max,
        }
        : {}),
      onerror: (error) => options.logger.debug("MCP request refused", { error: error.message }),
    });
  }

  /** Open 2025 GET streams on this replica. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /**
   * Serves one HTTP request to `/mcp`. The calls of `budget.ticket` are given back when the answer
   * is over: at once for JSON, when the stream ends for a call answered as an event stream.
   */
  async fetch(request: Request, budget?: RequestBudget): Promise<Response> {
    const ticket = budget?.ticket;
    let response: Response;
    try {
      response = await this.#fetch(request, budget);
    } catch (error) {
      ticket?.release();
      throw error;
    }
    if (ticket === undefined || ticket.released) return response;
    if (response.body === null || !isEventStream(response)) {
      ticket.release();
      return response;
    }
    return new Response(whenBodyEnds(response.body, () => ticket.release()), response);
  }

  async #fetch(request: Request, budget: RequestBudget | undefined): Promise<Response> {
    let body: unknown;
    let forward = request;
    const limits = this.#options.limits;
    if (request.method === "POST") {
      const read = await readBody(
        request,
        this.#options.maxBodyBytes,
        limits?.bodyTimeoutMs ?? 0,
      );
      if (read === TOO_LARGE) {
        return jsonRpcError(
          413,
          -32600,
          `Request body is over the limit of ${this.#options.maxBodyBytes} bytes`,
        );
      }
      if (read === TIMED_OUT) {
        // The rest of the body may still be on its way: the connection cannot carry another request.
        return jsonRpcError(
          408,
          -32600,
          `Request body did not arrive within ${limits!.bodyTimeoutMs / 1000} s`,
          { connection: "close" },
        );
      }
      body = parseJson(read);
      if (Array.isArray(body) && limits !== undefined) {
        const refused = this.#admitBatch(body, budget);
        if (refused !== undefined) return refused;
      }
      const call = recognizeToolCall(request.headers, body, this.#recognize);
      if (call !== undefined) {
        const answer = await this.#fastCall(request, call, budget?.connectionClosed);
        if (answer !== undefined) return answer;
      }
      // Only a body that is not JSON is handed on as text, for the SDK to answer the parse error.
      if (body === undefined) forward = rebuild(request, read);
    }
    const options = { maxRequestBodySize: this.#options.maxBodyBytes };
    if (await isLegacyRequest(forward, body, options)) return this.#legacy(forward, body, budget);
    const response = await this.#modern.fetch(
      forward,
      body === undefined ? undefined : { parsedBody: body },
    );
    if (response.status !== 200) return response;
    if (isListen(body) && response.body !== null && isEventStream(response)) {
      return this.#boundListen(request, body, response, budget);
    }
    return response;
  }

  /** A batch: bounded in size, and each request in it is a call against the client's limits. */
  #admitBatch(batch: unknown[], budget: RequestBudget | undefined): Response | undefined {
    const limits = this.#options.limits!;
    if (batch.length > limits.maxBatch) {
      const refusal: Refusal = {
        status: 429,
        reason: "batch_size",
        retryAfterSeconds: 1,
        message: `A batch of ${batch.length} messages is over the limit of ${limits.maxBatch}`,
      };
      limits.onRefused(refusal);
      // Not worth retrying as it is: the answer is 400, the JSON-RPC error says why.
      return jsonRpcError(400, -32600, refusal.message);
    }
    const calls =
      batch.filter((message) =>
        typeof (message as { method?: unknown })?.method === "string" &&
        (message as { id?: unknown }).id !== undefined
      ).length;
    if (calls <= 1 || budget?.ticket === undefined) return undefined;
    const refused = budget.ticket.add(calls - 1, this.#now());
    return refused === undefined ? undefined : this.#refuse(refused);
  }

  #refuse(refusal: Refusal): Response {
    this.#options.limits?.onRefused(refusal);
    return refusalResponse(refusal);
  }

  /**
   * A 2026-07-28 `subscriptions/listen` stream: a stream, not a call. It takes a stream slot of
   * the client's and the router's; the resources it names are watched for as long as it is open.
   */
  #boundListen(
    request: Request,
    body: unknown,
    response: Response,
    budget: RequestBudget | undefined,
  ): Response {
    const limits = this.#options.limits;
    if (limits === undefined || budget === undefined) {
      this.#followListen(request, body);
      return response;
    }
    budget.ticket?.release();
    const slot = this.#reserveStream(budget.client, undefined, () => {});
    if (isRefusal(slot)) {
      response.body?.cancel().catch(() => {});
      return this.#refuse(slot);
    }
    this.#followListen(request, body);
    return new Response(slot.wrap(response.body!), response);
  }

  /** A stream slot of the client's and of the router's (per session, in total), or a refusal. */
  #reserveStream(
    client: string,
    session: string | undefined,
    onEnd: () => void,
  ): ReturnType<ListeningStreams["reserve"]> {
    const limits = this.#options.limits!;
    const clientSlot = limits.clients.admitStream(client, this.#now());
    if (isRefusal(clientSlot)) return clientSlot;
    const slot = limits.streams.reserve(session, () => {
      clientSlot.release();
      onEnd();
    });
    if (isRefusal(slot)) clientSlot.release();
    return slot;
  }

  /**
   * A 2026-07-28 `subscriptions/listen` stream that names resources: the SDK owns the stream and
   * its filtering; the backends are watched here, for as long as the client keeps the stream open,
   * under a session of the stream's own (updates are published to every listen stream, and the
   * SDK delivers each to the streams that asked for its URI).
   */
  #followListen(request: Request, body: unknown): void {
    const message = body as {
      method?: unknown;
      params?: { notifications?: { resourceSubscriptions?: unknown } };
    } | undefined;
    const uris = message?.method === "subscriptions/listen"
      ? message.params?.notifications?.resourceSubscriptions
      : undefined;
    if (!Array.isArray(uris) || uris.length === 0 || request.signal.aborted) return;
    const { subscriptions } = this.#options.surface;
    const listener = `listen:${randomSessionId()}`;
    for (const uri of uris) {
      if (typeof uri !== "string") continue;
      try {
        subscriptions.subscribe(listener, uri);
      } catch {
        // Unknown to every backend, or over a bound: nothing to follow for that URI.
      }
    }
    request.signal.addEventListener("abort", () => subscriptions.dropSession(listener), {
      once: true,
    });
  }

  /** Tells every listening client, in both eras, that the tool list changed. */
  toolsChanged(): void {
    this.#modern.notify.toolsChanged();
    for (const stream of this.#listeners.keys()) stream.send("notifications/tools/list_changed");
  }

  /** Tells every listening client that the resource or prompt lists changed. */
  surfaceChanged(what: { resources: boolean; prompts: boolean }): void {
    if (what.resources) this.#modern.notify.resourcesChanged();
    if (what.prompts) this.#modern.notify.promptsChanged();
    for (const stream of this.#listeners.keys()) {
      if (what.resources) stream.send("notifications/resources/list_changed");
      if (what.prompts) stream.send("notifications/prompts/list_changed");
    }
  }

  /** Sends `notifications/resources/updated` to the listening streams of `sessions`. */
  resourceUpdated(uri: string, sessions: ReadonlySet<string>): void {
    this.#modern.notify.resourceUpdated(uri);
    for (const [stream, sid] of this.#listeners) {
      if (sessions.has(sid)) stream.send("notifications/resources/updated", { uri });
    }
  }

  /** Requests of tools waiting for a client's answer on this replica (2025 and 2026). */
  get pendingClientRequests(): number {
    return this.#clientRequests.size + this.#parked.size;
  }

  /** Ends the 2025 GET streams, so their clients reconnect to another replica. */
  closeListeners(): Promise<void> {
    const listeners = [...this.#listeners.keys()];
    this.#listeners.clear();
    for (const stream of listeners) stream.close();
    return Promise.resolve();
  }

  /** Aborts open exchanges and closes listening streams. */
  async close(): Promise<void> {
    for (const controller of this.#inFlight.values()) controller.abort();
    this.#clientRequests.close();
    this.#parked.close();
    await this.closeListeners();
    this.#options.limits?.streams.closeAll();
    await this.#modern.close();
  }

  /**
   * Serves a recognised `tools/call` without the SDK: check the session, call, encode (progress, when
   * asked for, as an event stream). Only tools of mode UNARY: one that logs (STREAM) or asks the
   * client (SESSION) goes to the SDK path (`undefined`), which relays its logs and requests.
   */
  async #fastCall(
    request: Request,
    call: FastToolCall,
    connectionClosed: AbortSignal | undefined,
  ): Promise<Response | undefined> {
    let sid: string | undefined;
    if (call.sessionId !== undefined) {
      const session = await this.#options.sessions.open(call.sessionId);
      const refused = this.#refuseSession(session);
      if (refused !== undefined) return refused;
      sid = session!.sid;
    }
    const tool = this.#options.catalog().byName.get(call.name);
    if (tool !== undefined && tool.mode !== "UNARY") return undefined;
    this.#callsByPath?.inc(FAST_PATH);
    if (tool === undefined) return jsonAnswer(encodeUnknownTool(call));
    const key = sid === undefined ? undefined : `${sid}:${String(call.id)}`;
    const cancel = new AbortController();
    const abort = () => cancel.abort();
    // The client closing its connection aborts `request.signal` (Deno; with deno.json's unstable
    // `no-legacy-abort`, only then: the legacy abort of every finished request cost ~8 µs per
    // call, an exception object each time); a 2025 client may also
    // send `notifications/cancelled`, which finds the call under `key`.
    // The guard's `connectionClosed` covers what `request.signal` misses (connection_guard.ts).
    for (const signal of [request.signal, connectionClosed]) {
      if (signal?.aborted) cancel.abort();
      else signal?.addEventListener("abort", abort, { once: true });
    }
    if (key !== undefined) this.#inFlight.set(key, cancel);
    const run = (onProgress?: (progress: CallProgress) => void): Promise<ToolResult> =>
      this.#options.gateway.call(tool, call.arguments, {
        requestId: `${sid ?? "req"}:${String(call.id)}`,
        signal: cancel.signal,
        onProgress,
      }).finally(() => {
        request.signal.removeEventListener("abort", abort);
        connectionClosed?.removeEventListener("abort", abort);
        if (key !== undefined && this.#inFlight.get(key) === cancel) this.#inFlight.delete(key);
      });
    const { serverInfo } = this.#options;
    if (call.progressToken === undefined) {
      return jsonAnswer(encodeResult(call, await run(), serverInfo, tool.outputSchema));
    }
    const encoder = new TextEncoder();
    // Cleared when the client goes away: a cancelled stream must not be written or closed again.
    let open = true;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (message: string) => {
          if (open) controller.enqueue(encoder.encode(sseEvent(message)));
        };
        run((progress) => send(encodeProgress(call, progress))).then((result) => {
          send(encodeResult(call, result, serverInfo, tool.outputSchema));
          if (open) controller.close();
          open = false;
        }, (error) => {
          if (open) controller.error(error);
          open = false;
        });
      },
      cancel() {
        open = false;
        cancel.abort();
      },
    });
    return new Response(stream, { headers: SSE_HEADERS });
  }

  #createServer(context: ServeContext): Server {
    const { catalog, gateway, serverInfo } = this.#options;
    const capabilities = surfaceCapabilities(catalog());
    const server = new Server(serverInfo, { capabilities });
    server.setRequestHandler("tools/list", () => listTools(catalog()) as ListToolsResult);
    registerSurface(server, capabilities, this.#options.surface, context.session?.sid);
    server.setRequestHandler("tools/call", async (request, ctx) => {
      this.#callsByPath?.inc(SDK_PATH);
      const name = request.params.name;
      const tool = catalog().byName.get(name);
      if (tool === undefined) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool "${name}"`);
      }
      const progressToken = request.params._meta?.progressToken;
      const onProgress = progressToken === undefined ? undefined : (progress: CallProgress) => {
        ctx.mcpReq.notify({
          method: "notifications/progress",
          params: { progressToken, ...progress },
        }).catch(() => {});
      };
      const sid = context.session?.sid;
      // 2025: the session's `logging/setLevel` (every message before one); 2026-07-28: the level
      // in the request's envelope (none without one), as the SDK's own `ctx.mcpReq.log` decides.
      const threshold = sid !== undefined
        ? this.#options.surface.logLevels.get(sid)
        : logLevelOf(ctx.mcpReq.envelope);
      const logsWanted = sid !== undefined || threshold !== undefined;
      const onLog = !logsWanted ? undefined : (log: CallLog) => {
        if (!isLogLevel(log.level) || !passes(log.level, threshold)) return;
        ctx.mcpReq.notify({ method: "notifications/message", params: { ...log } }).catch(() => {});
      };
      if (sid === undefined && tool.mode === "SESSION") {
        // 2026-07-28: the tool's requests travel as input_required rounds.
        const outcome = await this.#interactiveRound(
          ctx,
          (ask, signal) =>
            gateway.call(tool, request.params.arguments, {
              requestId: `req:${String(ctx.mcpReq.id)}`,
              signal,
              onProgress,
              onLog,
              askClient: ask,
            }),
        );
        if ("requests" in outcome) {
          return inputRequired({
            inputRequests: outcome.requests as Parameters<typeof inputRequired>[0]["inputRequests"],
            requestState: outcome.state,
          });
        }
        return server.projectCallToolResult(outcome.result, tool.outputSchema);
      }
      const askClient = sid === undefined || context.transport === undefined
        ? undefined
        : this.#askClient(sid, context.transport, ctx.mcpReq.id);
      const key = sid === undefined ? undefined : `${sid}:${String(ctx.mcpReq.id)}`;
      const cancel = new AbortController();
      const abort = () => cancel.abort();
      // Any of these ends the call: the SDK's own signal (2026 client gone, server closed), the
      // HTTP request (a 2025 client that closed its connection: that transport does not abort
      // handlers), and this replica's `notifications/cancelled` bookkeeping. Plain listeners are
      // cheaper than `AbortSignal.any` on every call.
      const sources = [ctx.mcpReq.signal, ctx.http?.req?.signal, context.connectionClosed];
      for (const source of sources) {
        if (source?.aborted) cancel.abort();
        else source?.addEventListener("abort", abort, { once: true });
      }
      if (key !== undefined) this.#inFlight.set(key, cancel);
      try {
        const result = await gateway.call(tool, request.params.arguments, {
          requestId: `${sid ?? "req"}:${String(ctx.mcpReq.id)}`,
          signal: cancel.signal,
          onProgress,
          onLog,
          askClient,
        });
        return server.projectCallToolResult(result, tool.outputSchema);
      } finally {
        for (const source of sources) source?.removeEventListener("abort", abort);
        if (key !== undefined && this.#inFlight.get(key) === cancel) this.#inFlight.delete(key);
      }
    });
    return server;
  }

  /**
   * Sends a tool's request to a 2025 client on the stream of the call that made it; the client
   * answers with a POST of a JSON-RPC response, which `#post` hands to {@linkcode ClientRequests}.
   * Request IDs are the router's own, unique per replica, so answers to calls served by different
   * SDK server instances of one session never meet.
   */
  #askClient(
    sid: string,
    transport: WebStandardStreamableHTTPServerTransport,
    relatedRequestId: string | number,
  ): ClientRequester {
    return async (method, params) => {
      const { id, answer } = this.#clientRequests.open(sid);
      try {
        await transport.send({ jsonrpc: "2.0", id, method, params }, { relatedRequestId });
      } catch (error) {
        this.#clientRequests.cancel(sid, id);
        return { error: { code: -32603, message: `Cannot reach the client: ${error}` } };
      }
      return await answer;
    };
  }

  /** One round of a 2026-07-28 interactive call: a new call, or the retry of a parked one. */
  async #interactiveRound(
    ctx: { mcpReq: { requestState: () => unknown; inputResponses?: Record<string, unknown> } },
    run: Parameters<InputRequiredCalls["start"]>[0],
  ): Promise<RoundOutcome> {
    const state = ctx.mcpReq.requestState();
    if (typeof state !== "string") return await this.#parked.start(run);
    try {
      return await this.#parked.resume(state, ctx.mcpReq.inputResponses ?? {});
    } catch (error) {
      if (!(error instanceof UnknownStateError)) throw error;
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, error.message);
    }
  }

  async #legacy(
    request: Request,
    body: unknown,
    budget: RequestBudget | undefined,
  ): Promise<Response> {
    const header = request.headers.get("mcp-session-id");
    if (header === null) {
      if (request.method !== "POST") {
        return jsonRpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required");
      }
      return this.#initialize(request, body);
    }
    const found = await this.#options.sessions.open(header);
    const refused = this.#refuseSession(found);
    if (refused !== undefined) return refused;
    const session = found!;
    switch (request.method) {
      case "POST":
        return this.#post(request, body, session, budget?.connectionClosed);
      case "GET":
        return this.#listen(request, session, budget);
      case "DELETE": {
        // The client as the limits know it (token, else address behind a trusted proxy).
        const client = budget?.client ?? clientKey(request);
        const decision = await this.#options.ended.end(session, client);
        if (!decision.ended) {
          return jsonRpcError(decision.status, -32000, decision.message, {
            "Retry-After": String(decision.retryAfterSeconds),
          });
        }
        this.#options.surface.subscriptions.dropSession(session.sid);
        this.#options.surface.logLevels.delete(session.sid);
        this.#options.logger.info("Session ended", { sid: session.sid });
        return new Response(null, { status: 200 });
      }
      default:
        return jsonRpcError(405, -32000, "Method not allowed.");
    }
  }

  /** The answer for a session that cannot be served: unknown or ended (404), or not checkable. */
  #refuseSession(session: SessionClaims | undefined): Response | undefined {
    // MCP transport: a request with an ended or unknown session ID is answered 404.
    if (session === undefined) return jsonRpcError(404, -32001, "Session not found");
    if (!this.#options.ended.loaded) {
      return jsonRpcError(503, -32000, "Ended sessions not loaded yet; try again shortly", {
        "Retry-After": "1",
      });
    }
    if (this.#options.ended.has(session.sid)) {
      return jsonRpcError(404, -32001, "Session not found");
    }
    return undefined;
  }

  async #initialize(request: Request, body: unknown): Promise<Response> {
    const message = body as { method?: unknown; params?: Record<string, unknown> } | undefined;
    if (message?.method !== "initialize") {
      if (body === undefined) return this.#serveStateless(request, body, {});
      return jsonRpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required");
    }
    const params = message.params ?? {};
    const requested = typeof params.protocolVersion === "string" ? params.protocolVersion : "";
    const clientInfo = (params.clientInfo ?? {}) as { name?: unknown; version?: unknown };
    const session: SessionClaims = {
      sid: randomSessionId(),
      // The SDK answers initialize with the client's version when it supports it, else its latest.
      protocolVersion: SUPPORTED_PROTOCOL_VERSIONS.includes(requested)
        ? requested
        : LATEST_PROTOCOL_VERSION,
      client: {
        name: typeof clientInfo.name === "string" ? clientInfo.name : "",
        version: typeof clientInfo.version === "string" ? clientInfo.version : "",
      },
      issuedAt: Math.floor(this.#now() / 1000),
    };
    const token = await this.#options.sessions.seal(session);
    const server = this.#createServer({ session });
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => token,
      enableJsonResponse: true,
    });
    await server.connect(transport);
    const response = await transport.handleRequest(request, { parsedBody: body });
    // The exchange is over: the session lives on in its token, not in this instance.
    await server.close();
    this.#options.logger.info("Session started", {
      sid: session.sid,
      protocolVersion: session.protocolVersion,
      client: session.client,
    });
    return response;
  }

  #post(
    request: Request,
    body: unknown,
    session: SessionClaims,
    connectionClosed: AbortSignal | undefined,
  ): Promise<Response> {
    // Answers to tools' requests: delivered to the waiting call here, never to a new SDK server.
    if (isResponseBatch(body) && this.#clientRequests.deliver(session.sid, body)) {
      return Promise.resolve(new Response(null, { status: 202 }));
    }
    for (const message of Array.isArray(body) ? body : [body]) {
      const cancelled = message as { method?: unknown; params?: { requestId?: unknown } };
      if (cancelled?.method === "notifications/cancelled") {
        this.#inFlight.get(`${session.sid}:${String(cancelled.params?.requestId)}`)?.abort();
      }
    }
    return this.#serveStateless(request, body, { session, connectionClosed });
  }

  async #serveStateless(
    request: Request,
    body: unknown,
    context: ServeContext,
  ): Promise<Response> {
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      // A plain JSON answer is cheaper than an event stream; a stream is needed only to carry
      // progress, log messages or a tool's requests before the result. A client that goes away
      // before either is noticed all the same: Deno aborts `request.signal` when the connection
      // closes.
      enableJsonResponse: !wantsProgress(body) &&
        !callsStreamingTool(body, this.#options.catalog()),
    });
    const server = this.#createServer({ ...context, transport });
    await server.connect(transport);
    return transport.handleRequest(request, body === undefined ? undefined : { parsedBody: body });
  }

  #listen(
    request: Request,
    session: SessionClaims,
    budget: RequestBudget | undefined,
  ): Response {
    // What the SDK's transport checks of a GET, without its per-stream server (notification_stream.ts).
    if (!request.headers.get("accept")?.includes("text/event-stream")) {
      return jsonRpcError(406, -32000, "Not Acceptable: Client must accept text/event-stream");
    }
    const version = request.headers.get("mcp-protocol-version");
    if (version !== null && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      return jsonRpcError(400, -32000, `Bad Request: Unsupported protocol version: ${version}`);
    }
    const limits = this.#options.limits;
    let closeStream = () => {};
    // The slot is taken before the stream is built: a refused stream costs nothing more.
    const slot = limits === undefined || budget === undefined
      ? undefined
      : this.#reserveStream(budget.client, session.sid, () => closeStream());
    if (slot !== undefined && isRefusal(slot)) return this.#refuse(slot);
    const opened = new NotificationStream({
      heartbeatMs: limits?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      onClose: () => {
        this.#listeners.delete(opened);
        slot?.release();
      },
    });
    const stop = () => opened.close();
    closeStream = stop;
    this.#listeners.set(opened, session.sid);
    for (const signal of [request.signal, budget?.connectionClosed]) {
      if (signal?.aborted) stop();
      else signal?.addEventListener("abort", stop, { once: true });
    }
    return new Response(slot === undefined ? opened.body : slot.wrap(opened.body), {
      headers: SSE_HEADERS,
    });
  }
}

const TOO_LARGE = Symbol("too large");
const TIMED_OUT = Symbol("timed out");

/**
 * Reads a POST body as text; {@linkcode TOO_LARGE} when it is over `maxBytes` (a declared length was
 * already checked against the limit, a chunked body is counted as it comes), {@linkcode TIMED_OUT}
 * when a chunked body has not all arrived within `timeoutMs` (0: no limit). A body of declared
 * length is read in one go: the connection guard cuts it at the same deadline (408), and a timer
 * per request would cost the hot path more than the check is worth twice.
 */
async function readBody(
  request: Request,
  maxBytes: number,
  timeoutMs: number,
): Promise<string | typeof TOO_LARGE | typeof TIMED_OUT> {
  if (request.body === null) return "";
  if (request.headers.has("content-length")) return await request.text();
  const reader = request.body.getReader();
  let timedOut = false;
  const timer = timeoutMs > 0
    ? setTimeout(() => {
      timedOut = true;
      reader.cancel().catch(() => {});
    }, timeoutMs)
    : undefined;
  const decoder = new TextDecoder();
  let received = 0;
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (timedOut) return TIMED_OUT;
      if (done) break;
      received += value.byteLength;
      if (received > maxBytes) {
        await reader.cancel();
        return TOO_LARGE;
      }
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    if (timedOut) return TIMED_OUT;
    throw error;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  return text + decoder.decode();
}

/** The answer to a request over a limit: 429 or 503 with `Retry-After`, a JSON-RPC error body. */
export function refusalResponse(refusal: Refusal): Response {
  return jsonRpcError(refusal.status, -32000, refusal.message, {
    "retry-after": String(refusal.retryAfterSeconds),
  });
}

function isEventStream(response: Response): boolean {
  return response.headers.get("content-type")?.startsWith("text/event-stream") ?? false;
}

function isListen(body: unknown): boolean {
  return (body as { method?: unknown } | undefined)?.method === "subscriptions/listen";
}

/** The SDK's interval between SSE comment lines, used when no limits are configured. */
const DEFAULT_HEARTBEAT_MS = 15_000;
const FAST_PATH = { path: "fast" };
const SDK_PATH = { path: "sdk" };
const JSON_HEADERS = { "content-type": "application/json" };
const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

function jsonAnswer(text: string): Response {
  return new Response(text, { headers: JSON_HEADERS });
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The log level a 2026-07-28 request's envelope carries, if a valid one. */
function logLevelOf(envelope: unknown): McpLogLevel | undefined {
  const level = (envelope as Record<string, unknown> | undefined)?.[LOG_LEVEL_META_KEY];
  return isLogLevel(level) ? level : undefined;
}

/** Whether a body calls a tool that logs or asks the client: its answer must be a stream. */
function callsStreamingTool(body: unknown, catalog: Catalog): boolean {
  for (const message of Array.isArray(body) ? body : [body]) {
    const call = message as { method?: unknown; params?: { name?: unknown } };
    if (call?.method !== "tools/call" || typeof call.params?.name !== "string") continue;
    const mode = catalog.byName.get(call.params.name)?.mode;
    if (mode === "STREAM" || mode === "SESSION") return true;
  }
  return false;
}

/** Whether any request in a body asked for progress notifications. */
function wantsProgress(body: unknown): boolean {
  for (const message of Array.isArray(body) ? body : [body]) {
    const params = (message as { params?: { _meta?: { progressToken?: unknown } } })?.params;
    if (params?._meta?.progressToken !== undefined) return true;
  }
  return false;
}

function rebuild(request: Request, text: string): Request {
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body: text,
    signal: request.signal,
  });
}
