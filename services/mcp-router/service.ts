/**
 * The router's HTTP surface: `/mcp` behind the Origin, token and body checks and the client limits,
 * and its OAuth Protected Resource Metadata (RFC 9728) when OAuth is on
 * ({@linkcode RouterService.fetch}, the public MCP port); `/healthz`, `/readyz`, `/metrics` on the
 * ops port only ({@linkcode RouterService.ops}): what a scraper or probe reads is not for clients.
 * Per-request facts go to metrics, labelled by route, never by the raw path (every unique 404 path
 * would be a series for ever); the per-request log line is at debug level (at info it cost more
 * CPU than the call, in the router and in Docker's log driver).
 */
import type { Logger } from "../runtime/logger.ts";
import type { BackendDirectory } from "./backend_directory.ts";
import type { RouterConfig } from "./config.ts";
import { digestToken } from "./config.ts";
import type { JWTVerifyGetKey } from "jose";
import { BearerAuth } from "./bearer_auth.ts";
import { type GuardOptions, guardRequest, jsonRpcError } from "./http_guard.ts";
import { RESOURCE_METADATA_PREFIX, resourceMetadata } from "./oauth_settings.ts";
import { type EndedSessions, McpEndpoint, refusalResponse } from "./mcp_endpoint.ts";
import { type CallTicket, ClientLimits, isRefusal, type Refusal } from "./client_limits.ts";
import { ListeningStreams } from "./listening_streams.ts";
import { TrustedProxies } from "./trusted_proxies.ts";
import type { MetricsRegistry } from "../runtime/metrics.ts";
import type { SessionCodec } from "./session_token.ts";
import { ToolGateway } from "./tool_gateway.ts";
import { BackendRpc } from "./backend_rpc.ts";
import { ResourceSubscriptions } from "./resource_subscriptions.ts";
import { SessionLogLevels } from "./session_log_levels.ts";
import { resolveResource } from "./surface_catalog.ts";

/** Options of {@linkcode createRouterService}. */
export interface RouterServiceOptions {
  config: RouterConfig;
  directory: BackendDirectory;
  sessions: SessionCodec;
  ended: EndedSessions;
  metrics: MetricsRegistry;
  logger: Logger;
  serverInfo: { name: string; version: string };
  /** The clock of the limits; default `Date.now`. */
  now?: () => number;
  /** The OAuth issuer's keys (a `JwksCache`'s `getKey`); needed when `config.oauth` is set. */
  accessTokenKeys?: JWTVerifyGetKey;
}

/** The router, ready to be mounted on `Deno.serve`. */
export interface RouterService {
  /**
   * Serves the public MCP port; `peer` is the connection's source address, `connectionClosed`
   * aborts when the client's connection closes (a call whose client is gone is cancelled).
   */
  fetch(request: Request, peer: string, connectionClosed?: AbortSignal): Promise<Response>;
  /** Serves the ops port: `/healthz`, `/readyz`, `/metrics`. */
  ops(request: Request): Response;
  /** Which peers' `X-Forwarded-For` is believed; the caller keeps their host names resolved. */
  readonly trustedProxies: TrustedProxies;
  readonly endpoint: McpEndpoint;
  /** Requests being served now. */
  readonly inFlight: number;
  /** Marks the router not ready (shutdown has begun). */
  drain(): void;
  close(): Promise<void>;
}

/** Wires the directory, the gateway and the MCP endpoint into one fetch handler. */
export function createRouterService(options: RouterServiceOptions): RouterService {
  const { config, directory, metrics, logger } = options;
  const now = options.now ?? Date.now;
  const limitSettings = config.limits;
  const clients = new ClientLimits(limitSettings);
  const streams = new ListeningStreams(limitSettings, now);
  const trustedProxies = new TrustedProxies(limitSettings.trustedProxies);
  const limited = metrics.counter(
    "mcp_router_limited_total",
    "Requests refused by a limit (429 for a client over its own, 503 when the router is full).",
  );
  const onRefused = (refusal: Refusal) => limited.inc({ reason: refusal.reason });
  const rpc = new BackendRpc({
    discovery: (service) => directory.discovery(service),
    deadlineMs: config.callDeadlineMs,
  });
  const gateway = new ToolGateway({
    discovery: (service) => directory.discovery(service),
    sessions: rpc,
    deadlineMs: config.callDeadlineMs,
    logger,
    metrics,
  });
  // Created before the endpoint it notifies; it calls back only once a watch sends an update.
  const subscriptions: ResourceSubscriptions = new ResourceSubscriptions({
    rpc,
    resolve: (uri) => resolveResource(directory.catalog.surface, uri),
    onUpdated: (uri, sessions) => endpoint.resourceUpdated(uri, sessions),
    logger,
  });
  const endpoint = new McpEndpoint({
    catalog: () => directory.catalog,
    gateway,
    sessions: options.sessions,
    ended: options.ended,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    serverInfo: options.serverInfo,
    surface: {
      catalog: () => directory.catalog,
      rpc,
      subscriptions,
      logLevels: new SessionLogLevels(),
    },
    metrics,
    limits: {
      clients,
      streams,
      maxBatch: limitSettings.maxBatch,
      bodyTimeoutMs: limitSettings.bodyTimeoutMs,
      heartbeatMs: limitSettings.streamHeartbeatMs,
      onRefused,
    },
  });
  let shown = directory.catalog;
  const stopListening = directory.onChange((catalog) => {
    const [before, after] = [shown.surface, catalog.surface];
    shown = catalog;
    if (JSON.stringify(before.prompts) !== JSON.stringify(after.prompts)) {
      endpoint.surfaceChanged({ resources: false, prompts: true });
    }
    const resourcesOf = (s: typeof before) =>
      JSON.stringify([s.resources, s.templates.map((t) => t.uriTemplate)]);
    if (resourcesOf(before) !== resourcesOf(after)) {
      endpoint.surfaceChanged({ resources: true, prompts: false });
    }
    endpoint.toolsChanged();
  });
  const requests = metrics.counter(
    "mcp_router_http_requests_total",
    "HTTP requests on the MCP port by route (/mcp, or other for any other path) and status.",
  );
  const latency = metrics.histogram(
    "mcp_router_http_request_duration_seconds",
    "Time to the response headers, by method (GET, POST, DELETE, or other).",
  );
  const inFlightGauge = metrics.gauge(
    "mcp_router_calls_in_flight",
    "Calls admitted and not yet answered (batch members count one each).",
  );
  const streamGauge = metrics.gauge(
    "mcp_router_listening_streams",
    "GET and subscriptions/listen streams open on this router.",
  );
  const clientGauge = metrics.gauge(
    "mcp_router_limited_clients",
    "Clients whose rate and concurrency this router remembers (bounded by ROUTER_MAX_CLIENTS).",
  );
  const outstanding = metrics.gauge(
    "mcp_router_backend_outstanding",
    "Calls outstanding per backend instance, as the balancer counts them.",
  );
  const strategy = metrics.gauge(
    "mcp_router_backend_strategy",
    "1 for the load-balancing strategy each backend service uses now.",
  );
  const dissenting = metrics.gauge(
    "mcp_router_tool_dissenting_instances",
    "1 for each instance that describes a tool differently from its service's majority " +
      "(reason: version, missing, silent); it is sent no call of that tool.",
  );
  const rejectedEntries = metrics.gauge(
    "mcp_router_consul_rejected_entries",
    "Consul health entries of a backend service refused by validation.",
  );
  const subscriptionGauge = metrics.gauge(
    "mcp_router_resource_subscriptions",
    "Resource subscriptions (session, URI) held by this replica.",
  );
  const watchGauge = metrics.gauge(
    "mcp_router_resource_watches",
    "Backend WatchResource streams open now (one per subscribed URI).",
  );
  const pendingGauge = metrics.gauge(
    "mcp_router_client_requests_pending",
    "Requests of tools (sampling, elicitation) waiting for a client's answer.",
  );
  let draining = false;
  let inFlight = 0;
  const guard: GuardOptions = {
    allowedOriginHostnames: config.allowedOriginHostnames,
    maxBodyBytes: config.maxBodyBytes,
    auth: config.authRequired
      ? new BearerAuth({
        tokenDigests: config.authTokenDigests,
        oauth: config.oauth,
        keys: options.accessTokenKeys,
      })
      : undefined,
  };
  // RFC 9728, section 3.1: the path-suffixed form for the resource, and the bare form that
  // clients try when they only know the host.
  const metadataPaths = config.oauth
    ? new Set([config.oauth.resourceMetadataPath, RESOURCE_METADATA_PREFIX])
    : new Set<string>();

  function serveResourceMetadata(request: Request): Response {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response(null, { status: 405, headers: { Allow: "GET, HEAD" } });
    }
    // Public by design: clients read it before they hold a token, browsers from any origin.
    return Response.json(resourceMetadata(config.oauth!), {
      headers: { "Cache-Control": "max-age=3600", "Access-Control-Allow-Origin": "*" },
    });
  }

  async function serveMcp(
    request: Request,
    peer: string,
    connectionClosed: AbortSignal | undefined,
  ): Promise<Response> {
    // Before anything costs: a router at its cap answers at once, whoever asks.
    if (clients.inFlight >= limitSettings.maxInFlight && request.method !== "GET") {
      return refuse({
        status: 503,
        reason: "router_in_flight",
        retryAfterSeconds: 1,
        message: `The router is saturated: at most ${limitSettings.maxInFlight} calls in flight`,
      });
    }
    const rejected = await guardRequest(request, guard);
    if (rejected) return rejected.response;
    const client = clientKey(request, peer);
    let ticket: CallTicket | undefined;
    if (request.method !== "GET") {
      const admitted = clients.admitCalls(client, 1, now());
      if (isRefusal(admitted)) return refuse(admitted);
      ticket = admitted;
    }
    return await endpoint.fetch(request, { client, ticket, connectionClosed });
  }

  function refuse(refusal: Refusal): Response {
    onRefused(refusal);
    return refusalResponse(refusal);
  }

  /**
   * The client a request counts against: its bearer token when tokens are checked (the guard has
   * accepted it; only a digest is kept), else its address. An unchecked token would let one client
   * be as many as it likes.
   */
  function clientKey(request: Request, peer: string): string {
    if (config.authRequired) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
      if (match) return `token:${digestToken(match[1])}`;
    }
    return `address:${trustedProxies.clientAddress(peer, request.headers.get("x-forwarded-for"))}`;
  }

  function renderMetrics(): Response {
    inFlightGauge.set({}, clients.inFlight);
    streamGauge.set({}, streams.size);
    clientGauge.set({}, clients.clients);
    subscriptionGauge.set({}, subscriptions.size);
    watchGauge.set({}, subscriptions.openWatches);
    pendingGauge.set({}, endpoint.pendingClientRequests);
    strategy.clear();
    dissenting.clear();
    rejectedEntries.clear();
    for (const [service, dissent] of directory.dissent()) {
      for (const entry of dissent) {
        dissenting.set({
          service,
          tool: entry.tool,
          instance: entry.instance,
          reason: entry.reason,
        }, 1);
      }
    }
    for (const discovery of directory.discoveries()) {
      strategy.set({ service: discovery.service, strategy: discovery.strategy }, 1);
      rejectedEntries.set({ service: discovery.service }, discovery.rejected().length);
      for (const endpointInfo of discovery.endpoints()) {
        outstanding.set(
          { service: discovery.service, instance: endpointInfo.id },
          discovery.outstanding().get(endpointInfo.id) ?? 0,
        );
      }
    }
    return new Response(metrics.render(), {
      headers: { "content-type": "text/plain; version=0.0.4" },
    });
  }

  async function fetch(
    request: Request,
    peer: string,
    connectionClosed?: AbortSignal,
  ): Promise<Response> {
    const started = performance.now();
    const path = pathOf(request.url);
    const route = path === "/mcp"
      ? MCP_ROUTE
      : metadataPaths.has(path)
      ? METADATA_ROUTE
      : OTHER_ROUTE;
    inFlight++;
    let response: Response;
    try {
      if (route === MCP_ROUTE) response = await serveMcp(request, peer, connectionClosed);
      else if (route === METADATA_ROUTE) response = serveResourceMetadata(request);
      // The path is not echoed: the answer to a probe says nothing about what exists elsewhere.
      else response = jsonRpcError(404, -32000, "Not found: the MCP endpoint is /mcp");
    } catch (error) {
      logger.error("Request failed", { path: route.path, error: (error as Error).message });
      response = jsonRpcError(500, -32603, "Internal error");
    } finally {
      inFlight--;
    }
    const seconds = (performance.now() - started) / 1000;
    requests.inc(statusLabels(route, response.status));
    latency.observe(METHOD_LABELS[request.method] ?? OTHER_METHOD, seconds);
    if (path === "/mcp" && logger.enabled("debug")) {
      logger.debug("HTTP request", {
        method: request.method,
        path,
        status: response.status,
        mcpMethod: request.headers.get("mcp-method") ?? undefined,
        ms: Math.round(seconds * 10_000) / 10,
      });
    }
    return response;
  }

  function ops(request: Request): Response {
    const path = pathOf(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET" } });
    }
    if (path === "/healthz") return new Response("ok\n");
    if (path === "/readyz") {
      const ready = directory.loaded && options.ended.loaded && !draining;
      return new Response(ready ? "ready\n" : "not ready\n", { status: ready ? 200 : 503 });
    }
    if (path === "/metrics") return renderMetrics();
    return new Response("not found\n", { status: 404 });
  }

  return {
    fetch,
    ops,
    trustedProxies,
    endpoint,
    get inFlight() {
      return inFlight;
    },
    drain() {
      draining = true;
    },
    async close() {
      stopListening();
      subscriptions.close();
      await endpoint.close();
      rpc.close();
    },
  };
}

const MCP_ROUTE = { path: "/mcp" } as const;
const METADATA_ROUTE = { path: "/.well-known/oauth-protected-resource" } as const;
const OTHER_ROUTE = { path: "other" } as const;
const OTHER_METHOD = { method: "other" };
const METHOD_LABELS: Record<string, { method: string }> = {
  GET: { method: "GET" },
  POST: { method: "POST" },
  DELETE: { method: "DELETE" },
};
const STATUS_LABELS = new Map<string, { path: string; status: string }>();

/** `{path, status}` labels, made once per route and status (the hot path allocates none). */
function statusLabels(route: { path: string }, status: number): { path: string; status: string } {
  const key = `${route.path} ${status}`;
  let labels = STATUS_LABELS.get(key);
  if (labels === undefined) {
    labels = { path: route.path, status: String(status) };
    STATUS_LABELS.set(key, labels);
  }
  return labels;
}

/** The path of an absolute URL, without building a `URL` (once per request on the hot path). */
export function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  let end = url.length;
  for (const mark of ["?", "#"]) {
    const at = url.indexOf(mark, start);
    if (at >= 0 && at < end) end = at;
  }
  return url.slice(start, end);
}
