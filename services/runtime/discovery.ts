/**
 * Client-side discovery and balancing of one Consul service: follows its passing instances, keeps a
 * gRPC channel per instance and sends each call to one of them, retrying on another instance when a
 * call could not be delivered.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import {
  DESCRIBE_METHOD,
  type DescribeResponse,
  INVOKE_METHOD,
  INVOKE_STREAM_METHOD,
  type InvokeEvent,
  type InvokeRequest,
  type InvokeResponse,
} from "../../proto/mod.ts";
import { type ConsulClient, consulPath } from "./consul/client.ts";
import { describeRejected, parseServiceHealth } from "./consul/health.ts";
import { ConsulWatch } from "./consul/watch.ts";
import { GrpcCallError, GrpcChannel, type GrpcChannelOptions } from "./grpc_channel.ts";
import { Ejector, type EjectorOptions } from "./ejection.ts";
import { type Logger, SILENT_LOGGER } from "./logger.ts";
import { createPicker, type Picker, type StrategyName } from "./strategies.ts";
import { ToolError } from "./tool_error.ts";
import { delay } from "./delay.ts";

/** One healthy instance of a service, as Consul lists it. */
export interface Endpoint {
  /** The Consul service ID, unique per instance. */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** Consul `Weights.Passing`; 1 when absent. */
  readonly weight: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
}

/** Options of {@linkcode ServiceDiscovery}. */
export interface DiscoveryOptions {
  /** The Consul agent and token. */
  consul: ConsulClient;
  /** How calls are spread; default round-robin. */
  strategy?: StrategyName;
  logger?: Logger;
  /** How long Consul may hold a blocking query; default 30 s. */
  waitSeconds?: number;
  /** Source of numbers in [0, 1), for the random and weighted strategies and backoff jitter. */
  random?: () => number;
  /** The clock for ejections; default `Date.now`. */
  now?: () => number;
  /** Instances one call may be sent to, the first included; default 3. */
  maxAttempts?: number;
  /** How long one attempt may wait for a connection before trying another instance; 2 s. */
  connectTimeoutMs?: number;
  /** When instances are ejected after delivery failures. */
  ejection?: EjectorOptions;
  /** Options of every instance's channel (reconnect backoff, message size). */
  channelOptions?: GrpcChannelOptions;
}

/** Options of one call. */
export interface InvokeOptions {
  /** Aborting cancels the call (CANCELLED). */
  signal?: AbortSignal;
  /** Time allowed for the whole call, retries included. */
  deadlineMs?: number;
  /** The tool may run twice: a call whose connection dropped before the answer is retried too. */
  idempotent?: boolean;
  /** Request metadata (lower-case names). */
  metadata?: Readonly<Record<string, string>>;
}

/** Options of a streamed call. */
export interface InvokeStreamOptions extends InvokeOptions {
  /** Called with every event, the final result included. */
  onEvent(event: InvokeEvent): void;
}

/** The answer of a call and the instance that gave it. */
export interface InvokeResult {
  response: InvokeResponse;
  endpoint: Endpoint;
}

/** Called with the new list of healthy endpoints. */
export type EndpointsListener = (endpoints: readonly Endpoint[]) => void;

/**
 * How a failed call ended, from the delivery the channel reports ({@linkcode GrpcCallError}):
 * - `undelivered`: the server never saw the call (`not-sent`: no connection, a refused stream, a
 *   stream never started, a channel already shut down);
 * - `dropped`: the call was sent and no answer came (`sent-unanswered`: the connection broke, or the
 *   server reset the stream with CANCEL), unless we cancelled it;
 * - `final`: anything else: every status the server answered, our own cancellation and deadline,
 *   and errors that are not a {@linkcode GrpcCallError}.
 */
export type FailureKind = "undelivered" | "dropped" | "final";

/** Classifies a failed call; `cancelledByUs` is whether the caller aborted it. */
export function classifyFailure(error: unknown, cancelledByUs: boolean): FailureKind {
  if (!(error instanceof GrpcCallError) || cancelledByUs) return "final";
  // Our own deadline: no time is left for another instance.
  if (error.code === GrpcStatus.DEADLINE_EXCEEDED) return "final";
  if (error.delivery === "not-sent") return "undelivered";
  if (error.delivery === "sent-unanswered") return "dropped";
  return "final";
}

/** The instances of a service by health, from `/v1/health/service/<name>`. */
export interface HealthView {
  /** Passing: these take the calls. */
  passing: Endpoint[];
  /** Warning or critical, not in maintenance: tried only when no instance passes. */
  failing: Endpoint[];
  /** Entries that failed validation, one line each. */
  rejected: string[];
}

/**
 * Splits Consul health entries of `service` into passing and failing instances by the one health
 * definition (`consul/health.ts`); instances in maintenance and entries that fail validation are
 * left out. The failing ones are a last resort, as in Envoy's panic mode: when every check of a
 * service fails at once (a flapping check under load), its instances may still answer, and a call
 * that cannot be delivered is retried anyway.
 */
export function splitHealthEntries(body: unknown, service: string): HealthView {
  const health = parseServiceHealth(body, service);
  const view: HealthView = {
    passing: [],
    failing: [],
    rejected: health.rejected.map(describeRejected),
  };
  for (const instance of health.instances) {
    if (instance.health === "maintenance") continue;
    const endpoint: Endpoint = Object.freeze({
      id: instance.id,
      address: instance.address,
      port: instance.port,
      weight: instance.weights.passing,
      tags: instance.tags,
      meta: instance.meta,
    });
    (instance.health === "passing" ? view.passing : view.failing).push(endpoint);
  }
  return view;
}

interface ClientEntry {
  channel: GrpcChannel;
  target: string;
  /** The endpoint left Consul; the channel closes once its last call ends. */
  retiring: boolean;
}

/** The call options of one attempt. */
interface AttemptOptions {
  deadline: number | undefined;
  signal: AbortSignal | undefined;
  metadata: Readonly<Record<string, string>> | undefined;
}

type Attempt = (
  channel: GrpcChannel,
  options: AttemptOptions,
) => { promise: Promise<InvokeResponse>; received: () => boolean };

/** Marks an attempt's error with whether any stream event had arrived. */
const RECEIVED = Symbol("received");
/** Pause before trying every instance again when none could take a call. */
const RETRY_PAUSE_MS = 200;

const CHANNEL_OPTIONS: GrpcChannelOptions = {
  // An instance that restarts at the same address is found again quickly.
  reconnectBackoffMs: { initial: 200, max: 5_000 },
};

/** Discovers the passing instances of one Consul service and balances calls across them. */
export class ServiceDiscovery {
  readonly #service: string;
  readonly #logger: Logger;
  readonly #random: (() => number) | undefined;
  readonly #now: () => number;
  readonly #maxAttempts: number;
  readonly #connectTimeoutMs: number;
  readonly #channelOptions: GrpcChannelOptions;
  readonly #watch: ConsulWatch<HealthView>;
  readonly #ejector: Ejector;
  readonly #clients = new Map<string, ClientEntry>();
  readonly #outstanding = new Map<string, number>();
  readonly #listeners = new Set<EndpointsListener>();
  #picker: Picker;
  #endpoints: readonly Endpoint[] = Object.freeze([]);
  #failing: readonly Endpoint[] = Object.freeze([]);
  #panicking = false;
  #closed = false;
  #allowed: ReadonlyMap<string, ReadonlySet<string>> = new Map();
  #rejected: readonly string[] = [];

  constructor(service: string, options: DiscoveryOptions) {
    this.#service = service;
    this.#logger = (options.logger ?? SILENT_LOGGER).child({ upstream: service });
    this.#random = options.random;
    this.#now = options.now ?? Date.now;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
    this.#channelOptions = { ...CHANNEL_OPTIONS, ...options.channelOptions };
    this.#picker = createPicker(options.strategy ?? "round-robin", { random: this.#random });
    this.#ejector = new Ejector(options.ejection);
    this.#watch = new ConsulWatch(consulPath("/v1/health/service", service), {
      consul: options.consul,
      parse: (body) => splitHealthEntries(body, service),
      waitSeconds: options.waitSeconds,
      random: this.#random,
      logger: this.#logger,
    });
    this.#watch.onChange((view) => this.#update(view));
  }

  /** The Consul service name. */
  get service(): string {
    return this.#service;
  }

  /** The strategy in use. */
  get strategy(): StrategyName {
    return this.#picker.name;
  }

  /** Starts following Consul. */
  start(): void {
    if (!this.#closed) this.#watch.start();
  }

  /** Resolves once Consul has answered (possibly with no instance); rejects after `timeoutMs`. */
  async ready(timeoutMs?: number): Promise<void> {
    this.start();
    await this.#watch.ready(timeoutMs);
  }

  /** Stops following Consul and closes the gRPC client of every endpoint. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#watch.close();
    for (const entry of this.#clients.values()) entry.channel.close();
    this.#clients.clear();
    this.#listeners.clear();
  }

  /** The passing endpoints last seen, kept while Consul is unreachable. */
  endpoints(): readonly Endpoint[] {
    return this.#endpoints;
  }

  /** Adds a listener of endpoint changes; returns a function that removes it. */
  onChange(listener: EndpointsListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Switches the strategy for later calls. */
  setStrategy(name: StrategyName): void {
    if (name !== this.#picker.name) this.#picker = createPicker(name, { random: this.#random });
  }

  /** Calls in flight per endpoint ID. */
  outstanding(): ReadonlyMap<string, number> {
    return this.#outstanding;
  }

  /**
   * The only instances that may be sent calls of a tool, by tool name (those that describe the
   * version the router's catalog took); tools not in the map are not restricted. Replaces the
   * previous map.
   */
  setToolInstances(allowed: ReadonlyMap<string, ReadonlySet<string>>): void {
    this.#allowed = allowed;
  }

  /** The instances that may be sent calls of `tool`; `undefined` when it is not restricted. */
  toolInstances(tool: string): ReadonlySet<string> | undefined {
    return this.#allowed.get(tool);
  }

  /**
   * Calls `Describe` on one instance over the channel its calls use; rejects with the gRPC error.
   */
  async describe(endpoint: Endpoint, options: { timeoutMs: number }): Promise<DescribeResponse> {
    const entry = this.#client(endpoint);
    const deadline = Date.now() + options.timeoutMs;
    await this.#connected(entry.channel, deadline);
    const bytes = await entry.channel.unary(DESCRIBE_METHOD.path, DESCRIBE_METHOD.serialize({}), {
      deadline,
    });
    return DESCRIBE_METHOD.deserialize(bytes);
  }

  /** Entries of the last Consul answer that failed validation, one line each. */
  rejected(): readonly string[] {
    return this.#rejected;
  }

  /** Calls `Invoke` on one instance, retrying on others as {@linkcode classifyFailure} allows. */
  invoke(request: InvokeRequest, options: InvokeOptions = {}): Promise<InvokeResult> {
    const message = INVOKE_METHOD.serialize(request);
    return this.#call(request.tool, options, (channel, callOptions) => ({
      promise: channel.unary(INVOKE_METHOD.path, message, callOptions).then((bytes) =>
        INVOKE_METHOD.deserialize(bytes)
      ),
      received: () => false,
    }));
  }

  /**
   * Calls `InvokeStream` on one instance, passing every event to `onEvent`. A failed call is retried
   * on another instance only if no event was received yet.
   */
  invokeStream(request: InvokeRequest, options: InvokeStreamOptions): Promise<InvokeResult> {
    const message = INVOKE_STREAM_METHOD.serialize(request);
    return this.#call(request.tool, options, (channel, callOptions) => {
      let received = false;
      let result: InvokeResponse | undefined;
      const onMessage = (bytes: Uint8Array) => {
        const event = INVOKE_STREAM_METHOD.deserialize(bytes);
        received = true;
        if (event.result) result = event.result;
        try {
          options.onEvent(event);
        } catch (error) {
          this.#logger.error("Stream event listener failed", { error });
        }
      };
      const streamOptions = { ...callOptions, onMessage };
      const promise = channel.serverStream(INVOKE_STREAM_METHOD.path, message, streamOptions).then(
        () => {
          if (result) return result;
          throw new ToolError("INTERNAL", `Stream from "${this.#service}" ended without a result`);
        },
      );
      return { promise, received: () => received };
    });
  }

  async #call(tool: string, options: InvokeOptions, attempt: Attempt): Promise<InvokeResult> {
    const { signal } = options;
    const deadline = options.deadlineMs === undefined ? undefined : Date.now() + options.deadlineMs;
    if (!this.#watch.hasValue && !this.#closed) {
      // Calls that arrive before Consul first answered wait for it rather than fail at startup.
      this.start();
      await this.#watch.ready(Math.min(options.deadlineMs ?? 5_000, 5_000)).catch(() => {});
    }
    const tried = new Set<string>();
    const attemptOptions: AttemptOptions = { deadline, signal, metadata: options.metadata };
    let lastError: unknown;
    let attempts = 0;
    for (; attempts < this.#maxAttempts; attempts++) {
      if (signal?.aborted) throw cancelled(this.#service, signal);
      let endpoint = this.#pick(tried, tool);
      if (!endpoint && lastError !== undefined) {
        // Every instance was tried and the call reached none of them (each failure so far was
        // safe to retry): with attempts left, try them again after a short pause. A service with
        // one instance would otherwise fail a call on one slow first connection (a new router on
        // a busy machine) or one restart.
        const pause = Math.min(
          RETRY_PAUSE_MS,
          deadline === undefined ? RETRY_PAUSE_MS : deadline - Date.now(),
        );
        if (pause <= 0) break;
        await delay(pause, { signal });
        if (signal?.aborted) throw cancelled(this.#service, signal);
        tried.clear();
        endpoint = this.#pick(tried, tool);
      }
      if (!endpoint) break;
      tried.add(endpoint.id);
      const entry = this.#client(endpoint);
      this.#outstanding.set(endpoint.id, (this.#outstanding.get(endpoint.id) ?? 0) + 1);
      try {
        await this.#connected(entry.channel, deadline);
        const { promise, received } = attempt(entry.channel, attemptOptions);
        const response = await promise.catch((error) => {
          throw Object.assign(error, { [RECEIVED]: received() });
        });
        this.#ejector.recordSuccess(endpoint.id);
        return { response, endpoint };
      } catch (error) {
        const kind = classifyFailure(error, signal?.aborted ?? false);
        if (kind === "final") throw error;
        this.#recordFailure(endpoint, kind, error);
        lastError = error;
        const retry = kind === "undelivered" ||
          (options.idempotent === true && !(error as { [RECEIVED]?: boolean })[RECEIVED]);
        if (!retry) throw error;
      } finally {
        this.#release(endpoint.id);
      }
    }
    if (lastError === undefined) {
      throw new ToolError("UNAVAILABLE", `No healthy instance of "${this.#service}" in Consul`);
    }
    const { details } = grpcStatusOf(lastError);
    throw new ToolError(
      "UNAVAILABLE",
      `No instance of "${this.#service}" could take the call after ${attempts} attempts: ${details}`,
      { cause: lastError },
    );
  }

  /**
   * Waits until the channel is connected, at most the connect timeout. An instance that was killed
   * can leave an address that swallows SYNs (an overlay network); without this bound, calls queue
   * on its channel until their deadline instead of going to another instance.
   */
  #connected(channel: GrpcChannel, deadline: number | undefined): Promise<void> {
    const limit = deadline === undefined
      ? this.#connectTimeoutMs
      : Math.min(this.#connectTimeoutMs, Math.max(0, deadline - Date.now()));
    return channel.ready(limit);
  }

  /** Picks among endpoints not tried yet, preferring those not ejected. */
  #pick(tried: ReadonlySet<string>, tool: string): Endpoint | undefined {
    const panic = this.#endpoints.length === 0 && this.#failing.length > 0;
    if (panic !== this.#panicking) {
      this.#panicking = panic;
      if (panic) {
        this.#logger.warn("No passing instance, trying the failing ones", {
          failing: this.#failing.map((endpoint) => endpoint.id),
        });
      }
    }
    const pool = panic ? this.#failing : this.#endpoints;
    const allowed = this.#allowed.get(tool);
    const untried = pool.filter((endpoint) =>
      !tried.has(endpoint.id) && (allowed?.has(endpoint.id) ?? true)
    );
    if (untried.length === 0) return undefined;
    return this.#picker.pick(this.#ejector.admit(untried, this.#now()), this.#outstanding);
  }

  #recordFailure(endpoint: Endpoint, kind: FailureKind, error: unknown): void {
    const until = this.#ejector.recordFailure(endpoint.id, this.#now());
    const fields = { endpoint: endpoint.id, kind, error: grpcStatusOf(error).details };
    this.#logger.warn("Call to instance failed", fields);
    if (until !== undefined) {
      this.#logger.warn("Instance ejected", { endpoint: endpoint.id, untilMs: until });
    }
  }

  #client(endpoint: Endpoint): ClientEntry {
    const target = `${endpoint.address}:${endpoint.port}`;
    const existing = this.#clients.get(endpoint.id);
    if (existing && existing.target === target) return existing;
    existing?.channel.close();
    const entry: ClientEntry = {
      channel: new GrpcChannel(endpoint.address, endpoint.port, this.#channelOptions),
      target,
      retiring: false,
    };
    this.#clients.set(endpoint.id, entry);
    return entry;
  }

  #release(id: string): void {
    const count = (this.#outstanding.get(id) ?? 1) - 1;
    if (count > 0) {
      this.#outstanding.set(id, count);
      return;
    }
    this.#outstanding.delete(id);
    const entry = this.#clients.get(id);
    if (entry?.retiring) {
      entry.channel.close();
      this.#clients.delete(id);
    }
  }

  #update(view: HealthView): void {
    const endpoints = view.passing;
    if (view.rejected.join("\n") !== this.#rejected.join("\n")) {
      for (const line of view.rejected) this.#logger.warn(line);
    }
    this.#rejected = Object.freeze(view.rejected);
    const unchanged = JSON.stringify(endpoints) === JSON.stringify(this.#endpoints);
    const previous = new Set(this.#endpoints.map((endpoint) => endpoint.id));
    const current = new Set(endpoints.map((endpoint) => endpoint.id));
    const known = new Set([...current, ...view.failing.map((endpoint) => endpoint.id)]);
    this.#endpoints = Object.freeze(endpoints);
    this.#failing = Object.freeze(view.failing);
    this.#ejector.retain(known);
    for (const [id, entry] of this.#clients) {
      entry.retiring = !known.has(id);
      // Calls in flight to an instance that is draining must finish, so its client stays open.
      if (entry.retiring && !this.#outstanding.has(id)) {
        entry.channel.close();
        this.#clients.delete(id);
      }
    }
    if (unchanged) return;
    const added = [...current].filter((id) => !previous.has(id));
    const removed = [...previous].filter((id) => !current.has(id));
    this.#logger.info("Instances changed", { instances: endpoints.length, added, removed });
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#endpoints);
      } catch (error) {
        this.#logger.error("Endpoints listener failed", { error });
      }
    }
  }
}

function grpcStatusOf(error: unknown): { code: number | undefined; details: string } {
  if (typeof error !== "object" || error === null) {
    return { code: undefined, details: String(error) };
  }
  const { code, details, message } = error as {
    code?: unknown;
    details?: unknown;
    message?: unknown;
  };
  return {
    code: typeof code === "number" ? code : undefined,
    details: typeof details === "string" ? details : String(message),
  };
}

function cancelled(service: string, signal: AbortSignal): ToolError {
  return new ToolError("CANCELLED", `Call to "${service}" was cancelled`, { cause: signal.reason });
}
