/**
 * Serves a {@linkcode ServiceDefinition} as `platform.v1.Capability` plus the standard
 * `grpc.health.v1.Health`, and counts in-flight calls for draining.
 *
 * Logs: a call that failed on this side (INTERNAL, DEADLINE_EXCEEDED, UNAVAILABLE) or took longer than
 * {@linkcode SLOW_CALL_MS} is logged at the default level; every other call only at debug level. At
 * info, one line per call cost more CPU than the call (JSON, stderr, and Docker's log driver parsing
 * it: a third of a core at 3k calls/s). Per-call facts (outcome, latency by tool) go to the
 * service's metrics through `onCallEnd`, and to the router's.
 */
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import {
  CAPABILITY_SERVICE,
  type DescribeResponse,
  type InvokeEvent,
  type InvokeMode,
  type InvokeRequest,
  type InvokeResponse,
  type SessionMessage,
} from "../../proto/mod.ts";
import {
  createExtensionMethods,
  describeExtensions,
  grpcJsExtensionHandlers,
} from "./capability_extensions.ts";
import { toContentMessage } from "./content_blocks.ts";
import { ToolSession } from "./tool_session.ts";
import type { Logger } from "./logger.ts";
import { compileValidator, type Validator } from "./schema_validator.ts";
import type { CallRecord } from "./service_metrics.ts";
import {
  ContentResult,
  type ServiceDefinition,
  type ToolContext,
  type ToolDefinition,
  type ToolProgress,
} from "./tool.ts";
import { ToolError } from "./tool_error.ts";

/** Options of {@linkcode createCapabilityServer}. */
export interface CapabilityServerOptions {
  instanceId: string;
  logger: Logger;
  /** The clock, for durations in logs. */
  now?: () => number;
  /** Called when a tool call ends (metrics). */
  onCallEnd?: (call: CallRecord) => void;
}

/** A gRPC server for one service, not yet bound. */
export interface CapabilityServer {
  readonly server: grpc.Server;
  /** Calls being served right now. */
  readonly inFlight: number;
  /** Sets the health of the whole server and of `platform.v1.Capability`. */
  setServing(serving: boolean): void;
  /** Resolves once no call is in flight, or after `timeoutMs`; true when idle. */
  idle(timeoutMs: number): Promise<boolean>;
}

/** Calls slower than this are logged at the default level. */
export const SLOW_CALL_MS = 1000;

/** Outcomes that say the caller asked for something wrong, or gave up: not this service's fault. */
const CALLER_OUTCOMES = new Set(["OK", "INVALID_ARGUMENT", "NOT_FOUND", "CANCELLED"]);

/** Name of the Capability service in gRPC health checks. */
export const CAPABILITY_HEALTH_NAME = "platform.v1.Capability";

interface CompiledTool {
  definition: ToolDefinition;
  validate: Validator;
}

/** Builds the server; bind it with `bindAsync`. */
export function createCapabilityServer(
  service: ServiceDefinition,
  options: CapabilityServerOptions,
): CapabilityServer {
  const now = options.now ?? Date.now;
  const logger = options.logger;
  const tools = new Map<string, CompiledTool>(
    service.tools.map((
      tool,
    ) => [tool.name, { definition: tool, validate: compileValidator(tool.inputSchema) }]),
  );
  const toolNames = [...tools.keys()].map((name) => `"${name}"`).join(", ");
  const health = new HealthImplementation({ "": "SERVING", [CAPABILITY_HEALTH_NAME]: "SERVING" });
  const server = new grpc.Server({ "grpc.keepalive_permit_without_calls": 1 });
  let inFlight = 0;
  const idleWaiters = new Set<() => void>();

  function finished(): void {
    inFlight--;
    if (inFlight === 0) { for (const wake of idleWaiters) wake(); }
  }

  const describeResponse: DescribeResponse = {
    service: service.name,
    version: service.version,
    instanceId: options.instanceId,
    tools: service.tools.map((tool) => ({
      name: tool.name,
      title: tool.title,
      description: tool.description,
      inputSchemaJson: JSON.stringify(tool.inputSchema),
      outputSchemaJson: JSON.stringify(tool.outputSchema),
      annotationsJson: JSON.stringify(tool.annotations ?? {}),
      mode: INVOKE_MODES[tool.mode ?? "unary"],
    })),
    ...describeExtensions(service),
  };

  /**
   * Runs one call; `emit` receives progress and log events of streaming calls, `ask` sends a request
   * to the client of a session call.
   */
  async function execute(
    request: InvokeRequest,
    signal: AbortSignal,
    emit: ((event: InvokeEvent) => void) | undefined,
    ask?: ToolContext["ask"],
  ): Promise<InvokeResponse> {
    const tool = tools.get(request.tool);
    if (!tool) {
      throw new ToolError(
        "NOT_FOUND",
        `Unknown tool "${request.tool}": ${service.name} offers ${toolNames}`,
      );
    }
    let raw: unknown;
    try {
      raw = request.argumentsJson.trim() === "" ? {} : JSON.parse(request.argumentsJson);
    } catch (error) {
      throw new ToolError(
        "INVALID_ARGUMENT",
        `Invalid argument "arguments_json": not valid JSON (${(error as Error).message})`,
      );
    }
    tool.validate(raw);
    const args = tool.definition.parse(raw);
    const context: ToolContext = {
      instanceId: options.instanceId,
      requestId: request.requestId,
      signal,
      progress: (update: ToolProgress) =>
        emit?.({
          progress: {
            progress: update.progress,
            total: update.total ?? 0,
            message: update.message ?? "",
          },
        }),
      log: (message: string) => emit?.({ log: message }),
      logMessage: (level, data, loggerName) =>
        emit?.({
          logEvent: { level, logger: loggerName ?? "", dataJson: JSON.stringify(data ?? null) },
        }),
      ask: ask ?? (() =>
        Promise.reject(
          new ToolError("FAILED_PRECONDITION", `Tool "${request.tool}" cannot ask the client`),
        )),
    };
    const result = await tool.definition.run(args, context);
    if (signal.aborted) throw new ToolError("CANCELLED", "The call was cancelled by the caller");
    if (result instanceof ContentResult) {
      return {
        resultJson: "",
        instanceId: options.instanceId,
        content: result.content.map(toContentMessage),
        structuredContentJson: result.structuredContent === undefined
          ? ""
          : JSON.stringify(result.structuredContent),
        isError: result.isError,
      };
    }
    return { resultJson: JSON.stringify(result), instanceId: options.instanceId };
  }

  /** At debug level only: info keeps one line per RPC. Tests wait for it to know a call arrived. */
  function logStart(rpc: string, request: InvokeRequest): void {
    logger.debug("rpc started", { rpc, tool: request.tool, requestId: request.requestId });
  }

  function logCall(rpc: string, request: InvokeRequest, started: number, error?: unknown): void {
    const durationMs = now() - started;
    const outcome = error === undefined
      ? "OK"
      : error instanceof ToolError
      ? error.code
      : "INTERNAL";
    const quiet = CALLER_OUTCOMES.has(outcome) && durationMs < SLOW_CALL_MS;
    const fields = {
      rpc,
      tool: request.tool,
      requestId: request.requestId,
      durationMs: Math.round(durationMs * 100) / 100,
      outcome,
      ...(error === undefined ? {} : { error: (error as Error).message }),
    };
    options.onCallEnd?.({
      rpc,
      tool: request.tool,
      outcome: fields.outcome,
      durationMs: fields.durationMs,
    });
    if (quiet) logger.debug("rpc", fields);
    else if (outcome === "INTERNAL") logger.error("rpc", fields);
    else logger.warn("rpc", fields);
  }

  function toStatus(error: unknown): grpc.ServiceError {
    const code = error instanceof ToolError ? error.grpcStatus : grpc.status.INTERNAL;
    const message = error instanceof Error ? error.message : String(error);
    return Object.assign(new Error(message), {
      code,
      details: message,
      metadata: new grpc.Metadata(),
    });
  }

  /** An abort signal for the call: the caller cancelled, or its deadline passed. */
  function abortOnCancel(
    call: Pick<grpc.ServerUnaryCall<InvokeRequest, InvokeResponse>, "getDeadline"> & {
      on(event: "cancelled", listener: () => void): unknown;
    },
  ): AbortController {
    const controller = new AbortController();
    call.on("cancelled", () => controller.abort());
    const deadline = call.getDeadline();
    const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    if (Number.isFinite(at) && at > 0) {
      const timer = setTimeout(() => controller.abort(), Math.max(0, at - Date.now()));
      controller.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
    }
    return controller;
  }

  const handlers: grpc.UntypedServiceImplementation = {
    Describe(
      _call: grpc.ServerUnaryCall<unknown, DescribeResponse>,
      callback: grpc.sendUnaryData<DescribeResponse>,
    ) {
      callback(null, describeResponse);
    },
    Invoke(
      call: grpc.ServerUnaryCall<InvokeRequest, InvokeResponse>,
      callback: grpc.sendUnaryData<InvokeResponse>,
    ) {
      inFlight++;
      const started = now();
      logStart("Invoke", call.request);
      const controller = abortOnCancel(call);
      execute(call.request, controller.signal, undefined).then(
        (response) => {
          logCall("Invoke", call.request, started);
          callback(null, response);
        },
        (error) => {
          logCall("Invoke", call.request, started, error);
          callback(toStatus(error));
        },
      ).finally(() => {
        controller.abort();
        finished();
      });
    },
    InvokeStream(call: grpc.ServerWritableStream<InvokeRequest, InvokeEvent>) {
      inFlight++;
      const started = now();
      logStart("InvokeStream", call.request);
      const controller = abortOnCancel(call);
      const emit = (event: InvokeEvent) => {
        if (!controller.signal.aborted) call.write(event);
      };
      execute(call.request, controller.signal, emit).then(
        (response) => {
          logCall("InvokeStream", call.request, started);
          call.write({ result: response });
          call.end();
        },
        (error) => {
          logCall("InvokeStream", call.request, started, error);
          call.emit("error", toStatus(error));
        },
      ).finally(() => {
        controller.abort();
        finished();
      });
    },
  };

  /** InvokeSession on grpc-js: the stream's messages go to a {@linkcode ToolSession}. */
  function invokeSession(call: grpc.ServerDuplexStream<SessionMessage, InvokeEvent>): void {
    const controller = abortOnCancel(call);
    const session = new ToolSession(
      (request, signal, emit, ask) => execute(request, signal, emit, ask),
      {
        write: (event) => call.write(event),
        end: () => call.end(),
        fail: (error) => call.emit("error", toStatus(error)),
      },
      controller.signal,
    );
    call.on("end", () => session.callerGone());
    call.on("error", () => session.callerGone());
    call.on("data", (message: SessionMessage) => {
      if (message.call === undefined || message.call === null) {
        session.onMessage(message);
        return;
      }
      const request = message.call;
      inFlight++;
      const started = now();
      logStart("InvokeSession", request);
      session.onMessage(message)?.then(
        () => logCall("InvokeSession", request, started),
        (error) => logCall("InvokeSession", request, started, error),
      ).finally(() => {
        controller.abort();
        finished();
      });
    });
  }

  handlers.InvokeSession = invokeSession;
  Object.assign(
    handlers,
    grpcJsExtensionHandlers(createExtensionMethods(service, options.instanceId), {
      toStatus,
      abortOnCancel,
    }),
  );
  server.addService(CAPABILITY_SERVICE, handlers);
  health.addToServer(server);

  return {
    server,
    get inFlight() {
      return inFlight;
    },
    setServing(serving: boolean) {
      const status = serving ? "SERVING" : "NOT_SERVING";
      health.setStatus("", status);
      health.setStatus(CAPABILITY_HEALTH_NAME, status);
    },
    idle(timeoutMs: number): Promise<boolean> {
      if (inFlight === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          idleWaiters.delete(wake);
          resolve(inFlight === 0);
        };
        const timer = setTimeout(wake, timeoutMs);
        idleWaiters.add(wake);
      });
    },
  };
}

const INVOKE_MODES: Record<string, InvokeMode> = {
  unary: "UNARY",
  stream: "STREAM",
  session: "SESSION",
};

/** Binds `server` on all interfaces; resolves with the bound port. */
export function bindServer(server: grpc.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error) {
        reject(new Error(`Cannot listen on port ${port}: ${error.message}`, { cause: error }));
      } else resolve(bound);
    });
  });
}
