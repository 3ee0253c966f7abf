/**
 * Runs one MCP tools/call against the backends: validates the arguments against the tool's JSON
 * Schema, picks an instance through the service's discovery client, and turns the answer or the
 * failure into an MCP tool result.
 */
import type * as grpc from "@grpc/grpc-js";
import type {
  ClientAnswerMessage,
  InvokeEvent,
  InvokeRequest,
  InvokeResponse,
} from "../../proto/mod.ts";
import { fromContentMessage, type McpContentBlock } from "../runtime/content_blocks.ts";
import type { Logger } from "../runtime/logger.ts";
import { compileValidator, type Validator } from "../runtime/schema_validator.ts";
import { ToolError } from "../runtime/tool_error.ts";
import type { CatalogTool } from "./catalog.ts";
import type { MetricsRegistry } from "../runtime/metrics.ts";

/** Progress of a call, as MCP `notifications/progress` carries it. */
export interface CallProgress {
  progress: number;
  total?: number;
  message?: string;
}

/** A log message of a call, as MCP `notifications/message` carries it. */
export interface CallLog {
  level: string;
  logger?: string;
  data: unknown;
}

/** A request of a tool to the client, and what the client answered. */
export type ClientRequester = (
  method: string,
  params: Record<string, unknown>,
) => Promise<{ result: Record<string, unknown> } | { error: { code: number; message: string } }>;

/** An MCP `CallToolResult`. */
export interface ToolResult {
  [key: string]: unknown;
  content: McpContentBlock[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

/** Options of one call. */
export interface CallOptions {
  /** The MCP request id, forwarded to the backend for its logs. */
  requestId: string;
  /** Aborted when the client cancels or goes away. */
  signal?: AbortSignal;
  /** Set when the client asked for progress: the call then streams. */
  onProgress?: (progress: CallProgress) => void;
  /** Log messages of the call, already filtered by the client's level. */
  onLog?: (log: CallLog) => void;
  /** Relays a request of the tool to the client; without it, the tool's requests are refused. */
  askClient?: ClientRequester;
}

/** Options of a backend call, as the discovery client takes them. */
export interface BackendCallOptions {
  signal?: AbortSignal;
  deadlineMs?: number;
  idempotent?: boolean;
}

/** What the gateway needs of a service's discovery client (`ServiceDiscovery` fits). */
export interface ServiceCaller {
  invoke(
    request: InvokeRequest,
    options: BackendCallOptions,
  ): Promise<{ response: InvokeResponse; endpoint: { id: string } }>;
  invokeStream(
    request: InvokeRequest,
    options: BackendCallOptions & { onEvent(event: InvokeEvent): void },
  ): Promise<{ response: InvokeResponse; endpoint: { id: string } }>;
}

/** What the gateway needs for tools that may ask the client (`BackendRpc` fits). */
export interface SessionCaller {
  invokeSession(
    service: string,
    request: InvokeRequest,
    handlers: {
      signal?: AbortSignal;
      deadlineMs: number;
      onEvent(event: InvokeEvent): void;
      onRequest(method: string, params: Record<string, unknown>): Promise<ClientAnswerMessage>;
    },
  ): Promise<{ response: InvokeResponse; instance: string }>;
}

/** Options of {@linkcode ToolGateway}. */
export interface ToolGatewayOptions {
  /** The discovery client of a service, while it exists. */
  discovery: (service: string) => ServiceCaller | undefined;
  /** Calls of tools of mode SESSION; such tools fail without it. */
  sessions?: SessionCaller;
  /** Deadline of a call, in milliseconds. */
  deadlineMs: number;
  logger: Logger;
  metrics: MetricsRegistry;
}

/** Calls tools on the backends. */
export class ToolGateway {
  readonly #options: ToolGatewayOptions;
  readonly #validators = new WeakMap<CatalogTool, Validator>();
  readonly #calls;
  readonly #latency;
  readonly #backendLatency;
  readonly #inFlight;

  constructor(options: ToolGatewayOptions) {
    this.#options = options;
    const metrics = options.metrics;
    this.#calls = metrics.counter("mcp_router_tool_calls_total", "Tool calls by tool and outcome.");
    this.#latency = metrics.histogram(
      "mcp_router_tool_call_duration_seconds",
      "Tool call latency seen by the router, by tool.",
    );
    this.#backendLatency = metrics.histogram(
      "mcp_router_backend_call_duration_seconds",
      "Backend call latency by service and instance.",
    );
    this.#inFlight = metrics.gauge(
      "mcp_router_backend_in_flight",
      "Calls in flight by backend service.",
    );
  }

  /** Validates and runs one call; every failure becomes a tool result with `isError`. */
  async call(tool: CatalogTool, args: unknown, options: CallOptions): Promise<ToolResult> {
    const started = performance.now();
    let outcome = "ok";
    let instance = "";
    const fields: Record<string, unknown> = { tool: tool.name, requestId: options.requestId };
    try {
      this.#validator(tool)(args ?? {});
      const discovery = this.#options.discovery(tool.service);
      if (discovery === undefined) {
        throw new ToolError("UNAVAILABLE", `No healthy instance of "${tool.service}" in Consul`);
      }
      const request = {
        tool: tool.backendName,
        argumentsJson: JSON.stringify(args ?? {}),
        requestId: options.requestId,
      };
      const callOptions = {
        signal: options.signal,
        deadlineMs: this.#options.deadlineMs,
        idempotent: tool.annotations?.idempotentHint === true,
      };
      this.#inFlight.add({ service: tool.service }, 1);
      try {
        const onEvent = eventHandler(options);
        let response: InvokeResponse;
        if (tool.mode === "SESSION") {
          const sessions = this.#options.sessions;
          if (sessions === undefined) {
            throw new ToolError("UNAVAILABLE", `Tool "${tool.name}" needs interactive calls`);
          }
          const answer = await sessions.invokeSession(tool.service, request, {
            signal: options.signal,
            deadlineMs: this.#options.deadlineMs,
            onEvent,
            onRequest: (method, params) => relayToClient(options.askClient, method, params),
          });
          response = answer.response;
          instance = answer.instance;
        } else if (options.onProgress || tool.mode === "STREAM") {
          const answer = await discovery.invokeStream(request, { ...callOptions, onEvent });
          response = answer.response;
          instance = answer.endpoint.id;
        } else {
          const answer = await discovery.invoke(request, callOptions);
          response = answer.response;
          instance = answer.endpoint.id;
        }
        return toResult(response, tool);
      } finally {
        this.#inFlight.add({ service: tool.service }, -1);
        if (instance) {
          this.#backendLatency.observe(
            { service: tool.service, instance },
            (performance.now() - started) / 1000,
          );
        }
      }
    } catch (error) {
      const { code, message } = describeFailure(error);
      outcome = code;
      fields.error = message;
      return { content: [{ type: "text", text: message }], isError: true };
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.#calls.inc({ tool: tool.name, outcome });
      this.#latency.observe({ tool: tool.name }, seconds);
      // Per-call facts are the metrics above; a line at the default level only when a backend
      // failed the call (a client's bad arguments or cancellation is not the platform's problem,
      // and must not let a client flood the logs).
      if (outcome !== "ok" || this.#options.logger.enabled("debug")) {
        const line = { ...fields, service: tool.service, instance, outcome, ms: seconds * 1000 };
        if (outcome === "ok") this.#options.logger.debug("Tool call", line);
        else if (CLIENT_OUTCOMES.has(outcome)) this.#options.logger.debug("Tool call failed", line);
        else this.#options.logger.warn("Tool call failed", line);
      }
    }
  }

  #validator(tool: CatalogTool): Validator {
    let validator = this.#validators.get(tool);
    if (validator === undefined) {
      validator = compileValidator(tool.inputSchema);
      this.#validators.set(tool, validator);
    }
    return validator;
  }
}

/** Passes a streamed call's progress and log events to the caller's listeners. */
function eventHandler(options: CallOptions): (event: InvokeEvent) => void {
  const { onProgress, onLog } = options;
  return (event) => {
    if (event.progress && onProgress) {
      const { progress, total, message } = event.progress;
      if (typeof progress !== "number") return;
      onProgress({
        progress,
        ...(total ? { total } : {}),
        ...(message ? { message: String(message) } : {}),
      });
    } else if (event.logEvent && onLog) {
      const { level, logger, dataJson } = event.logEvent;
      let data: unknown;
      try {
        data = JSON.parse(dataJson);
      } catch {
        data = dataJson;
      }
      onLog({ level, ...(logger ? { logger: String(logger).slice(0, 128) } : {}), data });
    } else if (typeof event.log === "string" && onLog) {
      onLog({ level: "info", data: event.log });
    }
  };
}

/** Asks the client for a tool, and turns its answer into the contract's message. */
async function relayToClient(
  askClient: ClientRequester | undefined,
  method: string,
  params: Record<string, unknown>,
): Promise<ClientAnswerMessage> {
  if (askClient === undefined) {
    return {
      id: 0,
      resultJson: "",
      errorCode: -32601,
      errorMessage: `This client cannot be asked "${method}" on this call`,
    };
  }
  const answer = await askClient(method, params);
  if ("error" in answer) {
    return {
      id: 0,
      resultJson: "",
      errorCode: answer.error.code,
      errorMessage: answer.error.message,
    };
  }
  return { id: 0, resultJson: JSON.stringify(answer.result), errorCode: 0, errorMessage: "" };
}

function toResult(response: InvokeResponse, tool: CatalogTool): ToolResult {
  if (Array.isArray(response.content) && response.content.length > 0) {
    try {
      return contentResult(response);
    } catch (error) {
      throw new ToolError(
        "INTERNAL",
        `The backend sent an invalid result: ${(error as Error).message}`,
      );
    }
  }
  return jsonResult(response.resultJson, tool);
}

/** A backend's content blocks as a tool result; what cannot be carried fails the call. */
function contentResult(response: InvokeResponse): ToolResult {
  const result: ToolResult = { content: response.content!.map(fromContentMessage) };
  if (response.structuredContentJson) {
    let value: unknown;
    try {
      value = JSON.parse(response.structuredContentJson);
    } catch {
      throw new TypeError("Structured content is not JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TypeError("Structured content is not a JSON object");
    }
    result.structuredContent = value as Record<string, unknown>;
  }
  if (response.isError === true) result.isError = true;
  return result;
}

function jsonResult(resultJson: string, tool: CatalogTool): ToolResult {
  let value: unknown;
  try {
    value = JSON.parse(resultJson);
  } catch {
    return { content: [{ type: "text", text: resultJson }] };
  }
  const result: ToolResult = { content: [{ type: "text", text: resultJson }] };
  if (
    tool.outputSchema && typeof value === "object" && value !== null && !Array.isArray(value)
  ) {
    result.structuredContent = value as Record<string, unknown>;
  }
  return result;
}

/** The status name and the message a client should see for a failed call. */
export function describeFailure(error: unknown): { code: string; message: string } {
  if (error instanceof ToolError) return { code: error.code, message: error.message };
  const grpcError = error as Partial<grpc.ServiceError>;
  if (typeof grpcError.code === "number" && typeof grpcError.details === "string") {
    return { code: STATUS_NAMES[grpcError.code] ?? "UNKNOWN", message: grpcError.details };
  }
  return { code: "INTERNAL", message: error instanceof Error ? error.message : String(error) };
}

/** Outcomes a client brings about itself: logged at debug level only. */
const CLIENT_OUTCOMES = new Set(["INVALID_ARGUMENT", "NOT_FOUND", "CANCELLED"]);

const STATUS_NAMES: Record<number, string> = {
  1: "CANCELLED",
  2: "UNKNOWN",
  3: "INVALID_ARGUMENT",
  4: "DEADLINE_EXCEEDED",
  5: "NOT_FOUND",
  9: "FAILED_PRECONDITION",
  13: "INTERNAL",
  14: "UNAVAILABLE",
};
