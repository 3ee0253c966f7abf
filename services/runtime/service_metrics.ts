/**
 * Prometheus metrics of one service instance (calls by tool and outcome, calls in flight, latency,
 * drain state) and the HTTP endpoint that serves them. The instance registers the endpoint's port
 * in Consul as Meta `metrics_port`, which Prometheus reads through `consul_sd_configs`
 * (`__meta_consul_service_metadata_metrics_port`): no scrape configuration per service.
 */
import type { Logger } from "./logger.ts";
import { LATENCY_BUCKETS, MetricsRegistry } from "./metrics.ts";

/** One finished call, as the Capability server reports it. */
export interface CallRecord {
  /** `Invoke` or `InvokeStream`. */
  rpc: string;
  /** The tool the caller asked for (any text: callers are not trusted). */
  tool: string;
  /** `OK` or the gRPC status name. */
  outcome: string;
  durationMs: number;
}

/** Options of {@linkcode createServiceMetrics}. */
export interface ServiceMetricsOptions {
  /** Calls in flight right now, read at each scrape. */
  inFlight: () => number;
}

/** The metrics of one instance. */
export interface ServiceMetrics {
  /** Counts a finished call. */
  record(call: CallRecord): void;
  /** Marks the instance as draining (deregistered, finishing its calls). */
  setDraining(draining: boolean): void;
  /** The Prometheus text exposition. */
  render(): string;
}

/** The label of calls to a tool the service does not offer. */
export const UNKNOWN_TOOL = "_unknown";

const OUTCOMES = new Set([
  "OK",
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "UNAVAILABLE",
  "DEADLINE_EXCEEDED",
  "CANCELLED",
  "FAILED_PRECONDITION",
  "INTERNAL",
]);
const RPCS = new Set(["Invoke", "InvokeStream"]);

/** Metrics for a service offering `tools`. */
export function createServiceMetrics(
  tools: readonly string[],
  options: ServiceMetricsOptions,
): ServiceMetrics {
  const registry = new MetricsRegistry();
  const calls = registry.counter(
    "platform_service_calls_total",
    "Finished tool calls by RPC, tool and outcome (gRPC status name).",
  );
  const inFlight = registry.gauge(
    "platform_service_calls_in_flight",
    "Tool calls being served right now.",
  );
  const latency = registry.histogram(
    "platform_service_call_duration_seconds",
    "Duration of tool calls, by tool.",
    LATENCY_BUCKETS,
  );
  const draining = registry.gauge(
    "platform_service_draining",
    "1 while the instance is deregistered and finishing its calls, else 0.",
  );
  const known = new Set(tools);
  // Series exist from the start, so a rate over an idle service is 0, not missing.
  for (const tool of known) calls.inc({ rpc: "Invoke", tool, outcome: "OK" }, 0);
  draining.set({}, 0);
  inFlight.set({}, 0);

  return {
    record(call) {
      // The tool name and outcome come from callers: only known values become label values, so
      // a caller cannot grow the number of series.
      const tool = known.has(call.tool) ? call.tool : UNKNOWN_TOOL;
      const outcome = OUTCOMES.has(call.outcome) ? call.outcome : "INTERNAL";
      const rpc = RPCS.has(call.rpc) ? call.rpc : "other";
      calls.inc({ rpc, tool, outcome });
      latency.observe({ tool }, Math.max(0, call.durationMs) / 1000);
    },
    setDraining(value) {
      draining.set({}, value ? 1 : 0);
    },
    render() {
      inFlight.set({}, options.inFlight());
      return registry.render();
    },
  };
}

/** Options of {@linkcode serveMetrics}. */
export interface ServeMetricsOptions {
  /** Port to listen on; 0 picks a free one. */
  port: number;
  hostname?: string;
  logger: Logger;
}

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** The bound port. */
  readonly port: number;
  /** Stops listening. */
  close(): Promise<void>;
}

/** Serves `GET /metrics` from `render`; anything else is a 404, other methods a 405. */
export function serveMetrics(
  render: () => string,
  options: ServeMetricsOptions,
): MetricsEndpoint {
  const server = Deno.serve({
    port: options.port,
    hostname: options.hostname ?? "0.0.0.0",
    onListen: () => {},
    onError: (error) => {
      options.logger.error("metrics endpoint failed", { error: String(error) });
      return new Response("internal error\n", { status: 500 });
    },
  }, (request) => {
    const path = new URL(request.url).pathname;
    if (path !== "/metrics") return new Response("not found\n", { status: 404 });
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET" } });
    }
    return new Response(render(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  });
  return {
    port: server.addr.port,
    close: () => server.shutdown(),
  };
}
