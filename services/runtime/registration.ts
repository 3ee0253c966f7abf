/**
 * Keeps one service instance registered with the Consul agent: registers with backoff while Consul
 * is unreachable, notices a lost registration (Consul restarted) and registers again, deregisters on
 * shutdown, through the shared Consul client (with the service's token: under ACLs a service
 * identity lets it register its own service name only).
 */
import { type ConsulClient, consulPath } from "./consul/client.ts";
import { backoffDelay } from "./backoff.ts";
import { decodeKvValue, kvPath } from "./consul/kv.ts";
import { ConsulWatch } from "./consul/watch.ts";
import { instanceWeightKey, parseInstanceWeight } from "./instance_weight.ts";
import { delay } from "./delay.ts";
import type { Logger } from "./logger.ts";

/** A Consul health check definition (agent API field names). */
export interface ConsulCheck {
  GRPC?: string;
  GRPCUseTLS?: boolean;
  HTTP?: string;
  Method?: string;
  TCP?: string;
  Interval: string;
  Timeout: string;
  FailuresBeforeCritical?: number;
  DeregisterCriticalServiceAfter: string;
}

/**
 * When and how patiently Consul checks an instance: every `CHECK_INTERVAL`, each check given twice
 * that (at least 2 s), critical only after `CHECK_FAILURES` failures in a row. On a busy machine a
 * healthy instance can answer one check late; a single late answer must not take the only
 * instance out of every balancer. A stopping instance deregisters at once, and a dead one is
 * avoided by callers well before Consul calls it critical (refused connections are retried
 * elsewhere, HAProxy runs its own checks).
 */
export function checkTiming(
  config: { checkIntervalSeconds: number; checkFailures: number },
): Pick<
  ConsulCheck,
  "Interval" | "Timeout" | "FailuresBeforeCritical" | "DeregisterCriticalServiceAfter"
> {
  return {
    Interval: `${config.checkIntervalSeconds}s`,
    Timeout: `${Math.max(2, 2 * config.checkIntervalSeconds)}s`,
    FailuresBeforeCritical: config.checkFailures,
    DeregisterCriticalServiceAfter: "1m",
  };
}

/** What is registered. */
export interface ServiceRegistration {
  name: string;
  id: string;
  address: string;
  port: number;
  tags: readonly string[];
  meta: Readonly<Record<string, string>>;
  check: ConsulCheck;
  weights?: { passing: number; warning: number };
}

/** Options of {@linkcode ConsulRegistrar}. */
export interface RegistrarOptions {
  logger: Logger;
  /** How often the registration is checked, in ms (default 1000). */
  resyncMs?: number;
  /** Longest wait between attempts while Consul is unreachable, in ms (default 5000). */
  maxBackoffMs?: number;
  /** Timeout of one request to Consul, in ms (default 3000). */
  requestTimeoutMs?: number;
  /**
   * Follow the instance's weight key in Consul KV (`instance_weight.ts`) and register again when it
   * changes; default true.
   */
  followWeight?: boolean;
}

/** The agent API body of a registration. */
export function registrationBody(registration: ServiceRegistration): Record<string, unknown> {
  return {
    Name: registration.name,
    ID: registration.id,
    Address: registration.address,
    Port: registration.port,
    Tags: [...registration.tags],
    Meta: { ...registration.meta },
    Check: registration.check,
    ...(registration.weights
      ? {
        Weights: { Passing: registration.weights.passing, Warning: registration.weights.warning },
      }
      : {}),
  };
}

/** Registers an instance and keeps it registered until {@linkcode ConsulRegistrar.stop}. */
export class ConsulRegistrar {
  readonly #consul: ConsulClient;
  readonly #registration: ServiceRegistration;
  readonly #logger: Logger;
  readonly #resyncMs: number;
  readonly #maxBackoffMs: number;
  readonly #requestTimeoutMs: number;
  readonly #stopped = new AbortController();
  #loop: Promise<void> | undefined;
  #registered = false;
  #registrations = 0;
  readonly #followWeight: boolean;
  #weightWatch: ConsulWatch<number | undefined> | undefined;
  /** The weights registered: the definition's, or the one set in Consul KV. */
  #weights: ServiceRegistration["weights"];

  constructor(consul: ConsulClient, registration: ServiceRegistration, options: RegistrarOptions) {
    this.#consul = consul;
    this.#registration = registration;
    this.#logger = options.logger;
    this.#resyncMs = options.resyncMs ?? 1000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 3000;
    this.#followWeight = options.followWeight ?? true;
    this.#weights = registration.weights;
  }

  /** The weights the instance registers now. */
  get weights(): ServiceRegistration["weights"] {
    return this.#weights;
  }

  /** Whether the last check found the instance registered. */
  get registered(): boolean {
    return this.#registered;
  }

  /** How many times the instance was (re)registered. */
  get registrations(): number {
    return this.#registrations;
  }

  /** Starts the background loop (and the watch of the weight key); returns at once. */
  start(): void {
    if (this.#followWeight && this.#weightWatch === undefined) {
      const key = instanceWeightKey(this.#registration.name, this.#registration.id);
      this.#weightWatch = new ConsulWatch(kvPath(key), {
        consul: this.#consul,
        parse: weightOf,
        // No key: Consul's default weights.
        notFoundBody: [],
        logger: this.#logger,
      });
      this.#weightWatch.onChange((weight) => this.#useWeight(weight));
      this.#weightWatch.start();
    }
    this.#loop ??= this.#run();
  }

  #useWeight(weight: number | undefined): void {
    const next = weight === undefined
      ? this.#registration.weights
      : { passing: weight, warning: 1 };
    if (JSON.stringify(next) === JSON.stringify(this.#weights)) return;
    this.#weights = next;
    this.#logger.info("weight set in Consul KV", {
      serviceId: this.#registration.id,
      weight: weight ?? "default",
    });
    // The loop registers again at its next check.
    this.#registered = false;
  }

  /** Stops the loop and removes the instance from Consul; errors are logged, not thrown. */
  async deregister(): Promise<void> {
    await this.stop();
    try {
      // Not tied to the stopped signal: deregistering happens after the loop stopped.
      await this.#consul.put(consulPath("/v1/agent/service/deregister", this.#registration.id), {
        timeoutMs: this.#requestTimeoutMs,
      });
      this.#registered = false;
      this.#logger.info("deregistered from Consul", { serviceId: this.#registration.id });
    } catch (error) {
      this.#logger.warn("cannot deregister from Consul", {
        consul: this.#consul.address,
        error: describeError(error),
      });
    }
  }

  /** Stops the loop (and the weight watch) without deregistering. */
  async stop(): Promise<void> {
    this.#stopped.abort();
    await Promise.all([this.#loop, this.#weightWatch?.close()]);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped.signal.aborted) {
      try {
        if (!(await this.#isRegistered())) await this.#register();
        if (failures > 0) {
          this.#logger.info("Consul reachable again", { consul: this.#consul.address });
        }
        failures = 0;
        await delay(this.#resyncMs, { signal: this.#stopped.signal });
      } catch (error) {
        if (this.#stopped.signal.aborted) break;
        this.#registered = false;
        failures++;
        // Jittered, so the instances that lost Consul together do not all retry at once.
        const retryInMs = backoffDelay(failures - 1, {
          baseMs: 250,
          maxMs: this.#maxBackoffMs,
          jitter: 0.5,
        });
        this.#logger.warn("cannot reach Consul, retrying", {
          consul: this.#consul.address,
          error: describeError(error),
          retryInMs: Math.round(retryInMs),
        });
        await delay(retryInMs, { signal: this.#stopped.signal });
      }
    }
  }

  async #isRegistered(): Promise<boolean> {
    const found = await this.#consul.getOrUndefined(
      consulPath("/v1/agent/service", this.#registration.id),
      { signal: this.#stopped.signal, timeoutMs: this.#requestTimeoutMs },
    );
    return found !== undefined && this.#registered;
  }

  async #register(): Promise<void> {
    await this.#consul.put("/v1/agent/service/register", {
      query: { "replace-existing-checks": "true" },
      body: registrationBody({ ...this.#registration, weights: this.#weights }),
      signal: this.#stopped.signal,
      timeoutMs: this.#requestTimeoutMs,
    });
    this.#registered = true;
    this.#registrations++;
    this.#logger.info(this.#registrations === 1 ? "registered in Consul" : "registered again", {
      consul: this.#consul.address,
      serviceId: this.#registration.id,
      address: `${this.#registration.address}:${this.#registration.port}`,
    });
  }
}

/** The weight in a KV answer (`[{ Value: base64 }]`), or undefined when absent or not valid. */
function weightOf(body: unknown): number | undefined {
  const entry = Array.isArray(body) ? body[0] as { Value?: unknown } | undefined : undefined;
  if (typeof entry?.Value !== "string") return undefined;
  return parseInstanceWeight(decodeKvValue(entry.Value));
}

/** A short text for an error from fetch or Consul. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
