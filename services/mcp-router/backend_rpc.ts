/**
 * The router's calls beyond tools/call: ReadResource, GetPrompt, Complete, WatchResource and the
 * bidirectional InvokeSession, on grpc-js clients (one per instance address).
 *
 * Why grpc-js here and not the router's own `GrpcChannel`: that channel serves the hot path
 * (unary and server-streaming `Invoke*` only) and has no client-streaming half; these calls are
 * rare next to tool calls (a read, a prompt, a completion, one long stream per watched resource
 * or per interactive call), so a second, general client costs nothing measurable. Switch if
 * InvokeSession ever becomes a hot path (measure with `deno task bench conformance`).
 *
 * Instances come from the service's discovery client (passing in Consul), round robin; a call
 * that never reached an instance (UNAVAILABLE before any answer) goes to the next one.
 */
import * as grpc from "@grpc/grpc-js";
import {
  type CapabilityClient,
  CapabilityClientConstructor,
  type ClientAnswerMessage,
  type CompleteRequest,
  type CompleteResponse,
  type GetPromptRequest,
  type GetPromptResponse,
  type InvokeEvent,
  type InvokeRequest,
  type InvokeResponse,
  type ReadResourceRequest,
  type ReadResourceResponse,
} from "../../proto/mod.ts";
import type { Endpoint } from "../runtime/discovery.ts";
import { ToolError } from "../runtime/tool_error.ts";

/** What this module needs of a service's discovery client. */
export interface EndpointSource {
  endpoints(): readonly Endpoint[];
  /** The instances that may be sent calls of a tool (the catalog's majority), if restricted. */
  toolInstances?(tool: string): ReadonlySet<string> | undefined;
}

/** Options of {@linkcode BackendRpc}. */
export interface BackendRpcOptions {
  /** The discovery client of a service, while it exists. */
  discovery: (service: string) => EndpointSource | undefined;
  /** Deadline of a unary call, in milliseconds. */
  deadlineMs: number;
}

/** Options of one unary call. */
export interface RpcCallOptions {
  signal?: AbortSignal;
}

/** What an InvokeSession caller provides. */
export interface SessionHandlers {
  signal?: AbortSignal;
  deadlineMs: number;
  /** Every event but requests and the result. */
  onEvent(event: InvokeEvent): void;
  /** Answers a request of the tool. */
  onRequest(method: string, params: Record<string, unknown>): Promise<ClientAnswerMessage>;
}

/** The open watch of one resource on one instance. */
export interface ResourceWatch {
  /** Resolves when the stream ends (the instance went away, or `cancel`), with its error if any. */
  readonly ended: Promise<Error | undefined>;
  readonly instance: string;
  cancel(): void;
}

const UNDELIVERED = new Set([grpc.status.UNAVAILABLE]);
/** The largest params of a client request the router relays, as JSON text. */
export const MAX_CLIENT_REQUEST_BYTES = 1024 * 1024;
/** Most requests one call may send the client: a backend cannot flood a client through us. */
export const MAX_CLIENT_REQUESTS_PER_CALL = 64;

/** Calls a service's instances for resources, prompts, completion and interactive tools. */
export class BackendRpc {
  readonly #options: BackendRpcOptions;
  readonly #clients = new Map<string, CapabilityClient>();
  /** The service each client's address belongs to, to close clients of instances that left. */
  readonly #serviceOf = new Map<string, string>();
  readonly #next = new Map<string, number>();

  constructor(options: BackendRpcOptions) {
    this.#options = options;
  }

  /** Reads a resource. */
  readResource(
    service: string,
    request: ReadResourceRequest,
    options: RpcCallOptions = {},
  ): Promise<ReadResourceResponse> {
    return this.#unary(
      service,
      options,
      (client, meta, callOptions, done) => client.readResource(request, meta, callOptions, done),
    );
  }

  /** Renders a prompt. */
  getPrompt(
    service: string,
    request: GetPromptRequest,
    options: RpcCallOptions = {},
  ): Promise<GetPromptResponse> {
    return this.#unary(
      service,
      options,
      (client, meta, callOptions, done) => client.getPrompt(request, meta, callOptions, done),
    );
  }

  /** Asks for completions. */
  complete(
    service: string,
    request: CompleteRequest,
    options: RpcCallOptions = {},
  ): Promise<CompleteResponse> {
    return this.#unary(
      service,
      options,
      (client, meta, callOptions, done) => client.complete(request, meta, callOptions, done),
    );
  }

  /** Opens a watch of `uri` on one instance; `onUpdate` is called for each change. */
  watchResource(service: string, uri: string, onUpdate: () => void): ResourceWatch {
    const endpoint = this.#pick(service, new Set());
    if (endpoint === undefined) {
      return {
        ended: Promise.resolve(new ToolError("UNAVAILABLE", `No instance of "${service}"`)),
        instance: "",
        cancel: () => {},
      };
    }
    const stream = this.#client(endpoint, service).watchResource({ uri }, new grpc.Metadata(), {});
    stream.on("data", (update: { uri?: unknown }) => {
      if (update?.uri === uri) onUpdate();
    });
    const ended = new Promise<Error | undefined>((resolve) => {
      stream.on("error", (error: Error) => resolve(error));
      stream.on("end", () => resolve(undefined));
    });
    return { ended, instance: endpoint.id, cancel: () => stream.cancel() };
  }

  /**
   * Runs an interactive tool call: relays the tool's requests to `onRequest` and its answers back,
   * passes other events on, and resolves with the result.
   */
  async invokeSession(
    service: string,
    request: InvokeRequest,
    handlers: SessionHandlers,
  ): Promise<{ response: InvokeResponse; instance: string }> {
    const tried = new Set<string>();
    for (;;) {
      const endpoint = this.#pick(service, tried, request.tool);
      if (endpoint === undefined) {
        throw new ToolError("UNAVAILABLE", `No healthy instance of "${service}" in Consul`);
      }
      tried.add(endpoint.id);
      let received = false;
      try {
        const response = await this.#session(
          service,
          endpoint,
          request,
          handlers,
          () => received = true,
        );
        return { response, instance: endpoint.id };
      } catch (error) {
        const code = (error as grpc.ServiceError).code;
        if (received || !UNDELIVERED.has(code) || handlers.signal?.aborted) throw error;
        this.#drop(endpoint);
      }
    }
  }

  /** Closes every client. */
  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
    this.#serviceOf.clear();
  }

  #session(
    service: string,
    endpoint: Endpoint,
    request: InvokeRequest,
    handlers: SessionHandlers,
    onReceived: () => void,
  ): Promise<InvokeResponse> {
    const deadline = Date.now() + handlers.deadlineMs;
    const call = this.#client(endpoint, service).invokeSession(new grpc.Metadata(), { deadline });
    const abort = () => call.cancel();
    handlers.signal?.addEventListener("abort", abort, { once: true });
    return new Promise<InvokeResponse>((resolve, reject) => {
      let result: InvokeResponse | undefined;
      const seen = new Set<number>();
      call.on("data", (event: InvokeEvent) => {
        onReceived();
        if (event.result) {
          result = event.result;
          return;
        }
        if (event.request) {
          const { id, method, paramsJson } = event.request;
          if (seen.has(id)) return;
          seen.add(id);
          const relayed = seen.size > MAX_CLIENT_REQUESTS_PER_CALL
            ? Promise.resolve({
              id,
              resultJson: "",
              errorCode: -32603,
              errorMessage: `More than ${MAX_CLIENT_REQUESTS_PER_CALL} requests in one call`,
            })
            : this.#relay(method, paramsJson, handlers);
          void relayed.then((answer) => {
            call.write({ answer: { ...answer, id } });
          });
          return;
        }
        handlers.onEvent(event);
      });
      call.on("error", reject);
      call.on("end", () => {
        if (result) resolve(result);
        else reject(new ToolError("INTERNAL", "Session call ended without a result"));
      });
      call.write({ call: request });
    }).finally(() => {
      handlers.signal?.removeEventListener("abort", abort);
      call.end();
    });
  }

  /** Checks a backend's request before it reaches the client; answers a bad one itself. */
  async #relay(
    method: string,
    paramsJson: string,
    handlers: SessionHandlers,
  ): Promise<ClientAnswerMessage> {
    const refuse = (message: string) => ({
      id: 0,
      resultJson: "",
      errorCode: -32602,
      errorMessage: message,
    });
    if (method !== "sampling/createMessage" && method !== "elicitation/create") {
      return refuse(`The router does not relay "${String(method).slice(0, 64)}" to clients`);
    }
    if (typeof paramsJson !== "string" || paramsJson.length > MAX_CLIENT_REQUEST_BYTES) {
      return refuse(`Request params over ${MAX_CLIENT_REQUEST_BYTES} bytes`);
    }
    let params: unknown;
    try {
      params = JSON.parse(paramsJson);
    } catch {
      return refuse("Request params are not JSON");
    }
    if (typeof params !== "object" || params === null || Array.isArray(params)) {
      return refuse("Request params are not a JSON object");
    }
    try {
      return await handlers.onRequest(method, params as Record<string, unknown>);
    } catch (error) {
      return { id: 0, resultJson: "", errorCode: -32603, errorMessage: (error as Error).message };
    }
  }

  async #unary<Response>(
    service: string,
    options: RpcCallOptions,
    start: (
      client: CapabilityClient,
      metadata: grpc.Metadata,
      callOptions: grpc.CallOptions,
      done: (error: grpc.ServiceError | null, response?: Response) => void,
    ) => grpc.ClientUnaryCall,
  ): Promise<Response> {
    const tried = new Set<string>();
    const deadline = Date.now() + this.#options.deadlineMs;
    for (;;) {
      const endpoint = this.#pick(service, tried);
      if (endpoint === undefined) {
        throw new ToolError("UNAVAILABLE", `No healthy instance of "${service}" in Consul`);
      }
      tried.add(endpoint.id);
      try {
        return await new Promise<Response>((resolve, reject) => {
          const client = this.#client(endpoint, service);
          const call = start(client, new grpc.Metadata(), { deadline }, (e, r) => {
            options.signal?.removeEventListener("abort", abort);
            if (e) reject(e);
            else if (r === undefined) reject(new ToolError("INTERNAL", "Empty answer"));
            else resolve(r);
          });
          const abort = () => call.cancel();
          options.signal?.addEventListener("abort", abort, { once: true });
        });
      } catch (error) {
        // Every call here only reads: one that may have reached an instance is safe to send again.
        if (!UNDELIVERED.has((error as grpc.ServiceError).code) || options.signal?.aborted) {
          throw error;
        }
        this.#drop(endpoint);
      }
    }
  }

  #pick(service: string, tried: ReadonlySet<string>, tool?: string): Endpoint | undefined {
    const discovery = this.#options.discovery(service);
    // A tool's calls go only to the instances that describe the catalog's version of it.
    const allowed = tool === undefined ? undefined : discovery?.toolInstances?.(tool);
    const current = discovery?.endpoints() ?? [];
    this.#prune(service, current);
    const endpoints = current.filter((e) => !tried.has(e.id) && (allowed?.has(e.id) ?? true));
    if (endpoints.length === 0) return undefined;
    const next = this.#next.get(service) ?? 0;
    this.#next.set(service, next + 1);
    return endpoints[next % endpoints.length];
  }

  /**
   * Closes the clients of `service`'s instances that left Consul (calls in flight on them finish).
   * Not when the list is empty: Consul may be away, and the last instances keep serving.
   */
  #prune(service: string, endpoints: readonly Endpoint[]): void {
    if (endpoints.length === 0) return;
    const live = new Set(endpoints.map((e) => `${e.address}:${e.port}`));
    for (const [target, owner] of this.#serviceOf) {
      if (owner !== service || live.has(target)) continue;
      this.#clients.get(target)?.close();
      this.#clients.delete(target);
      this.#serviceOf.delete(target);
    }
  }

  #client(endpoint: Endpoint, service: string): CapabilityClient {
    const target = `${endpoint.address}:${endpoint.port}`;
    this.#serviceOf.set(target, service);
    let client = this.#clients.get(target);
    if (client === undefined) {
      client = new CapabilityClientConstructor(target, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": 8 * 1024 * 1024,
      });
      this.#clients.set(target, client);
    }
    return client;
  }

  /** A grpc-js channel under Deno may never reconnect after its server went away: start afresh. */
  #drop(endpoint: Endpoint): void {
    const target = `${endpoint.address}:${endpoint.port}`;
    this.#clients.get(target)?.close();
    this.#clients.delete(target);
    this.#serviceOf.delete(target);
  }
}
