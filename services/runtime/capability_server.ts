/**
 * Serves a {@linkcode ServiceDefinition} as `platform.v1.Capability` plus the standard
 * `grpc.health.v1.Health` on the platform's own {@linkcode GrpcServer} (grpc-js's server on Deno's
 * `node:http2` cost more CPU per call than the call itself), and counts in-flight calls for draining.
 *
 * Logs: a call that failed on this side (INTERNAL, DEADLINE_EXCEEDED, UNAVAILABLE) or took longer than
 * {@linkcode SLOW_CALL_MS} is logged at the default level; every other call only at debug level. At
 * info, one line per call cost more CPU than the call (JSON, stderr, and Docker's log driver parsing
 * it: a third of a core at 3k calls/s). Per-call facts (outcome, latency by tool) go to the
 * service's metrics through `onCallEnd`, and to the router's.
 */
import {
  CAPABILITY_SERVER_METHODS,
  type DescribeResponse,
  type InvokeEvent,
  type InvokeMode,
  type InvokeRequest,
  type InvokeResponse,
  type SessionMessage,
} from "../../proto/mod.ts";
import { createExtensionMethods, describeExtensions } from "./capability_extensions.ts";
import { GrpcServer, type GrpcServerCall, GrpcStatus, GrpcStatusError } from "./grpc_server.ts";
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
  /** SETTINGS_MAX_CONCURRENT_STREAMS per connection (`GRPC_MAX_CONCURRENT_STREAMS`). */
  maxConcurrentStreams?: number;
  /** The longest a call may run, in ms, whatever its `grpc-timeout` (`GRPC_MAX_DEADLINE`). */
  maxDeadlineMs?: number;
}

/** A gRPC server for one service, not yet bound. */
export interface CapabilityServer {
  readonly server: GrpcServer;
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
  const server = new GrpcServer({
    maxConcurrentStreams: options.maxConcurrentStreams,
    maxDeadlineMs: options.maxDeadlineMs,
  });
  server.setHealth("", "SERVING");
  server.setHealth(CAPABILITY_HEALTH_NAME, "SERVING");
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

  function toStatus(error: unknown): GrpcStatusError {
    const code = error instanceof ToolError ? error.grpcStatus : GrpcStatus.INTERNAL;
    const message = error instanceof Error ? error.message : String(error);
    return new GrpcStatusError(code, message);
  }

  const methods = CAPABILITY_SERVER_METHODS;
  const describeBytes = methods.describe.serialize(describeResponse);
  server.addUnary(methods.describe.path, () => Promise.resolve(describeBytes));
  server.addUnary(methods.invoke.path, async (bytes: Uint8Array, call: GrpcServerCall) => {
    const request = methods.invoke.deserialize(bytes);
    inFlight++;
    const started = now();
    logStart("Invoke", request);
    try {
      const response = await execute(request, call.signal, undefined);
      logCall("Invoke", request, started);
      return methods.invoke.serialize(response);
    } catch (error) {
      logCall("Invoke", request, started, error);
      throw toStatus(error);
    } finally {
      finished();
    }
  });
  server.addServerStream(methods.invokeStream.path, async (bytes, call, send) => {
    const request = methods.invokeStream.deserialize(bytes);
    inFlight++;
    const started = now();
    logStart("InvokeStream", request);
    const emit = (event: InvokeEvent) => {
      if (!call.signal.aborted) send(methods.invokeStream.serialize(event));
    };
    try {
      const response = await execute(request, call.signal, emit);
      logCall("InvokeStream", request, started);
      send(methods.invokeStream.serialize({ result: response }));
    } catch (error) {
      logCall("InvokeStream", request, started, error);
      throw toStatus(error);
    } finally {
      finished();
    }
  });
  // InvokeSession: the stream's messages go to a ToolSession, which answers through the call.
  server.addBidiStream(methods.invokeSession.path, (call) => {
    const session = new ToolSession(
      (request, signal, emit, ask) => execute(request, signal, emit, ask),
      {
        write: (event) => call.send(methods.invokeSession.serialize(event)),
        end: () => call.end(),
        fail: (error) => call.fail(toStatus(error)),
      },
      call.signal,
    );
    return {
      onEnd: () => session.callerGone(),
      onMessage: (bytes) => {
        let message: SessionMessage;
        try {
          message = methods.invokeSession.deserialize(bytes);
        } catch (error) {
          call.fail(new GrpcStatusError(GrpcStatus.INTERNAL, (error as Error).message));
          return;
        }
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
        ).finally(finished);
      },
    };
  });
  const extensions = createExtensionMethods(service, options.instanceId);
  function unary<Request, Response>(
    method: {
      path: string;
      deserialize(b: Uint8Array): Request;
      serialize(r: Response): Uint8Array;
    },
    run: (request: Request, signal: AbortSignal) => Promise<Response>,
  ): void {
    server.addUnary(method.path, async (bytes, call) => {
      try {
        return method.serialize(await run(method.deserialize(bytes), call.signal));
      } catch (error) {
        throw toStatus(error);
      }
    });
  }
  unary(methods.readResource, extensions.ReadResource);
  unary(methods.getPrompt, extensions.GetPrompt);
  unary(methods.complete, extensions.Complete);
  server.addServerStream(methods.watchResource.path, async (bytes, call, send) => {
    try {
      await extensions.WatchResource(
        methods.watchResource.deserialize(bytes),
        call.signal,
        (update) => send(methods.watchResource.serialize(update)),
      );
    } catch (error) {
      throw toStatus(error);
    }
  }, { longLived: true });

  return {
    server,
    get inFlight() {
      return inFlight;
    },
    setServing(serving: boolean) {
      const status = serving ? "SERVING" : "NOT_SERVING";
      server.setHealth("", status);
      server.setHealth(CAPABILITY_HEALTH_NAME, status);
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

/** Listens on all interfaces; resolves with the bound port. */
export function bindServer(server: GrpcServer, port: number): Promise<number> {
  try {
    return Promise.resolve(server.listen(port));
  } catch (error) {
    return Promise.reject(
      new Error(`Cannot listen on port ${port}: ${(error as Error).message}`, { cause: error }),
    );
  }
}
