/**
 * The router's HTTP surface: `/mcp` behind the Origin, token and body checks, its OAuth
 * Protected Resource Metadata (RFC 9728) when OAuth is on, and `/healthz`, `/readyz`, `/metrics`. Per-request facts go to metrics; the per-request log line is at debug
 * level (at info it cost more CPU than the call, in the router and in Docker's log driver).
 */
import type { Logger } from "../runtime/logger.ts";
import type { BackendDirectory } from "./backend_directory.ts";
import type { RouterConfig } from "./config.ts";
import type { JWTVerifyGetKey } from "jose";
import { BearerAuth } from "./bearer_auth.ts";
import { type GuardOptions, guardRequest, jsonRpcError } from "./http_guard.ts";
import { RESOURCE_METADATA_PREFIX, resourceMetadata } from "./oauth_settings.ts";
import { type EndedSessions, McpEndpoint } from "./mcp_endpoint.ts";
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
  /** The OAuth issuer's keys (a `JwksCache`'s `getKey`); needed when `config.oauth` is set. */
  accessTokenKeys?: JWTVerifyGetKey;
}

/** The router, ready to be mounted on `Deno.serve`. */
export interface RouterService {
  fetch(request: Request): Promise<Response>;
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
  const requests = metrics.counter("mcp_router_http_requests_total", "HTTP requests by status.");
  const latency = metrics.histogram(
    "mcp_router_http_request_duration_seconds",
    "Time to the response headers, by method.",
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

  async function serveMcp(request: Request): Promise<Response> {
    const rejected = await guardRequest(request, guard);
    if (rejected) return rejected.response;
    return await endpoint.fetch(request);
  }

  function renderMetrics(): Response {
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

  async function fetch(request: Request): Promise<Response> {
    const started = performance.now();
    const path = pathOf(request.url);
    inFlight++;
    let response: Response;
    try {
      if (path === "/mcp") response = await serveMcp(request);
      else if (path === "/healthz") response = new Response("ok\n");
      else if (path === "/readyz") {
        const ready = directory.loaded && options.ended.loaded && !draining;
        response = new Response(ready ? "ready\n" : "not ready\n", { status: ready ? 200 : 503 });
      } else if (path === "/metrics") response = renderMetrics();
      else if (metadataPaths.has(path)) response = serveResourceMetadata(request);
      else response = jsonRpcError(404, -32000, `Not found: "${path}"`);
    } catch (error) {
      logger.error("Request failed", { path, error: (error as Error).message });
      response = jsonRpcError(500, -32603, "Internal error");
    } finally {
      inFlight--;
    }
    const seconds = (performance.now() - started) / 1000;
    requests.inc({ path, status: String(response.status) });
    latency.observe({ method: request.method }, seconds);
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

  return {
    fetch,
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
