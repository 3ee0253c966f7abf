/**
 * Keeps one service instance registered with the Consul agent: registers with backoff while Consul
 * is unreachable, notices a lost registration (Consul restarted) and registers again, deregisters on
 * shutdown. Plain `fetch` against the agent API: each request needs its own timeout and abort
 * signal, which the npm `consul` client does not expose per call.
 */
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
  readonly #consulUrl: string;
  readonly #registration: ServiceRegistration;
  readonly #logger: Logger;
  readonly #resyncMs: number;
  readonly #maxBackoffMs: number;
  readonly #requestTimeoutMs: number;
  readonly #stopped = new AbortController();
  #loop: Promise<void> | undefined;
  #registered = false;
  #registrations = 0;

  constructor(consulUrl: string, registration: ServiceRegistration, options: RegistrarOptions) {
    this.#consulUrl = consulUrl;
    this.#registration = registration;
    this.#logger = options.logger;
    this.#resyncMs = options.resyncMs ?? 1000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 3000;
  }

  /** Whether the last check found the instance registered. */
  get registered(): boolean {
    return this.#registered;
  }

  /** How many times the instance was (re)registered. */
  get registrations(): number {
    return this.#registrations;
  }

  /** Starts the background loop; returns at once. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops the loop and removes the instance from Consul; errors are logged, not thrown. */
  async deregister(): Promise<void> {
    await this.stop();
    const url = `${this.#consulUrl}/v1/agent/service/deregister/${
      encodeURIComponent(this.#registration.id)
    }`;
    try {
      const response = await this.#request(url, { method: "PUT" });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.#registered = false;
      this.#logger.info("deregistered from Consul", { serviceId: this.#registration.id });
    } catch (error) {
      this.#logger.warn("cannot deregister from Consul", {
        consul: this.#consulUrl,
        error: describeError(error),
      });
    }
  }

  /** Stops the loop without deregistering. */
  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped.signal.aborted) {
      try {
        if (!(await this.#isRegistered())) await this.#register();
        if (failures > 0) this.#logger.info("Consul reachable again", { consul: this.#consulUrl });
        failures = 0;
        await this.#sleep(this.#resyncMs);
      } catch (error) {
        if (this.#stopped.signal.aborted) break;
        this.#registered = false;
        failures++;
        const delay = Math.min(this.#maxBackoffMs, 250 * 2 ** Math.min(failures - 1, 10));
        this.#logger.warn("cannot reach Consul, retrying", {
          consul: this.#consulUrl,
          error: describeError(error),
          retryInMs: delay,
        });
        await this.#sleep(delay);
      }
    }
  }

  async #isRegistered(): Promise<boolean> {
    const url = `${this.#consulUrl}/v1/agent/service/${encodeURIComponent(this.#registration.id)}`;
    const response = await this.#request(url, {});
    await response.body?.cancel();
    if (response.status === 404) return false;
    if (!response.ok) throw new Error(`HTTP ${response.status} from ${url}`);
    return this.#registered;
  }

  async #register(): Promise<void> {
    const url = `${this.#consulUrl}/v1/agent/service/register?replace-existing-checks=true`;
    const response = await this.#request(url, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(registrationBody(this.#registration)),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`Consul refused the registration: ${response.status} ${text}`);
    }
    this.#registered = true;
    this.#registrations++;
    this.#logger.info(this.#registrations === 1 ? "registered in Consul" : "registered again", {
      consul: this.#consulUrl,
      serviceId: this.#registration.id,
      address: `${this.#registration.address}:${this.#registration.port}`,
    });
  }

  #request(url: string, init: RequestInit): Promise<Response> {
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#requestTimeoutMs),
      ...(init.method === "PUT" && url.includes("deregister") ? [] : [this.#stopped.signal]),
    ]);
    return fetch(url, { ...init, signal });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.#stopped.signal;
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
    });
  }
}

/** A short text for an error from fetch or Consul. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
