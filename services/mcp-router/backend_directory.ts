/**
 * Follows the platform's services in Consul (blocking queries on the catalog, then one discovery
 * client per service), calls Describe on them and keeps the merged tool catalog. A slow or dead
 * service never blocks readers: they always get the last merged catalog.
 */
import * as grpc from "@grpc/grpc-js";
import {
  type CapabilityClient,
  CapabilityClientConstructor,
  type DescribeResponse,
} from "../../proto/mod.ts";
import { ConsulWatch } from "../runtime/consul_watch.ts";
import { type Endpoint, ServiceDiscovery } from "../runtime/discovery.ts";
import { type Logger, SILENT_LOGGER } from "../runtime/logger.ts";
import type { StrategyName } from "../runtime/strategies.ts";
import { type Catalog, EMPTY_CATALOG, mergeCatalog, type ServiceTools } from "./catalog.ts";

/** The Consul tag every agent, tool and worker carries. */
export const PLATFORM_TAG = "platform";

/** Options of {@linkcode BackendDirectory}. */
export interface BackendDirectoryOptions {
  consulUrl: string;
  logger?: Logger;
  /** The strategy of a service's calls; default round-robin. */
  strategyFor?: (service: string) => StrategyName | undefined;
  /** Time allowed for one Describe; default 3 s. */
  describeTimeoutMs?: number;
  /** How long Consul may hold a blocking query; default 30 s. */
  waitSeconds?: number;
}

/** Called with the new catalog when it changed. */
export type CatalogListener = (catalog: Catalog) => void;

interface Backend {
  readonly discovery: ServiceDiscovery;
  readonly stopListening: () => void;
  tools: ServiceTools | undefined;
  /** Instance IDs the current tools were described with. */
  describedFrom: string;
  describing: Promise<void> | undefined;
  again: boolean;
  /** A pending retry after every instance failed to describe itself. */
  retry: ReturnType<typeof setTimeout> | undefined;
  /** Describe rounds that failed in a row, for the retry backoff. */
  failures: number;
}

/** First and longest wait before describing a service again after every instance failed. */
const DESCRIBE_RETRY_MS = { first: 500, max: 10_000 };

/** Platform services found in Consul, their discovery clients and their merged catalog. */
export class BackendDirectory {
  readonly #options: BackendDirectoryOptions;
  readonly #logger: Logger;
  readonly #watch: ConsulWatch<string[]>;
  readonly #backends = new Map<string, Backend>();
  readonly #listeners = new Set<CatalogListener>();
  readonly #describeClients = new Map<string, CapabilityClient>();
  #catalog: Catalog = EMPTY_CATALOG;
  #loaded = false;
  #closed = false;
  #reportedConflicts = new Set<string>();

  constructor(options: BackendDirectoryOptions) {
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#watch = new ConsulWatch<string[]>("/v1/catalog/services", {
      consulUrl: options.consulUrl,
      waitSeconds: options.waitSeconds,
      logger: this.#logger,
      parse: platformServices,
    });
    this.#watch.onChange((names) => this.#sync(names));
  }

  /** The current catalog. */
  get catalog(): Catalog {
    return this.#catalog;
  }

  /** Whether Consul answered and every service then known was described once (or failed to be). */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Starts following Consul. */
  start(): void {
    this.#watch.start();
  }

  /** Resolves once the first catalog is loaded; rejects after `timeoutMs`. */
  async ready(timeoutMs?: number): Promise<Catalog> {
    this.start();
    await this.#watch.ready(timeoutMs);
    await Promise.all([...this.#backends.values()].map((backend) => backend.describing));
    this.#loaded = true;
    return this.#catalog;
  }

  /** Adds a listener of catalog changes; returns a function that removes it. */
  onChange(listener: CatalogListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The discovery client of a service, while the service exists. */
  discovery(service: string): ServiceDiscovery | undefined {
    return this.#backends.get(service)?.discovery;
  }

  /** Every discovery client, for metrics. */
  discoveries(): ServiceDiscovery[] {
    return [...this.#backends.values()].map((backend) => backend.discovery);
  }

  /** Switches a service's strategy now (e.g. after a Consul KV change). */
  setStrategy(service: string, strategy: StrategyName): void {
    this.#backends.get(service)?.discovery.setStrategy(strategy);
  }

  /** Stops following Consul and closes every client. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#watch.close();
    const backends = [...this.#backends.values()];
    this.#backends.clear();
    for (const backend of backends) {
      clearTimeout(backend.retry);
      backend.stopListening();
    }
    await Promise.all(backends.map((backend) => backend.discovery.close()));
    await Promise.allSettled(backends.map((backend) => backend.describing));
    for (const client of this.#describeClients.values()) client.close();
    this.#describeClients.clear();
    this.#listeners.clear();
  }

  #sync(names: string[]): void {
    if (this.#closed) return;
    const wanted = new Set(names);
    for (const [service, backend] of this.#backends) {
      if (wanted.has(service)) continue;
      this.#backends.delete(service);
      clearTimeout(backend.retry);
      backend.stopListening();
      void backend.discovery.close();
      this.#logger.info("Service left the catalog", { service });
    }
    for (const service of names) {
      if (this.#backends.has(service)) continue;
      const discovery = new ServiceDiscovery(service, {
        consulUrl: this.#options.consulUrl,
        strategy: this.#options.strategyFor?.(service),
        logger: this.#logger.child({ backend: service }),
        waitSeconds: this.#options.waitSeconds,
      });
      const backend: Backend = {
        discovery,
        stopListening: discovery.onChange(() => this.#describeSoon(service)),
        tools: undefined,
        describedFrom: "",
        describing: undefined,
        again: false,
        retry: undefined,
        failures: 0,
      };
      this.#backends.set(service, backend);
      this.#logger.info("Service joined the catalog", { service, strategy: discovery.strategy });
      discovery.start();
      this.#track(backend, discovery.ready().then(() => this.#describe(service), () => {}));
    }
    this.#publish();
  }

  #describeSoon(service: string): void {
    const backend = this.#backends.get(service);
    if (backend === undefined) return;
    if (backend.describing) {
      backend.again = true;
      return;
    }
    this.#track(backend, this.#describe(service));
  }

  /**
   * Marks `backend` as being described until `work` settles. The mark is cleared by `work` itself
   * only if it is still the current one: a describe that finishes synchronously must not leave a
   * settled promise behind as "in progress", or the service would never be described again.
   */
  #track(backend: Backend, work: Promise<void>): void {
    const tracked: Promise<void> = work.finally(() => {
      if (backend.describing === tracked) backend.describing = undefined;
    });
    backend.describing = tracked;
  }

  async #describe(service: string): Promise<void> {
    const backend = this.#backends.get(service);
    if (backend === undefined || this.#closed) return;
    do {
      backend.again = false;
      const endpoints = backend.discovery.endpoints();
      const from = endpoints.map((endpoint) => endpoint.id).sort().join(",");
      if (endpoints.length === 0) {
        backend.tools = undefined;
      } else if (from !== backend.describedFrom || backend.tools === undefined) {
        const answer = await this.#describeAny(service, endpoints);
        if (answer === undefined) {
          // No instance answered (starting up, or a channel that will not reconnect): try
          // again later rather than leave the service's tools out until its instances change.
          this.#retryDescribe(service, backend);
          continue;
        }
        backend.failures = 0;
        backend.tools = { service, version: answer.version, tools: answer.tools };
      }
      backend.describedFrom = from;
      this.#publish();
    } while (backend.again && !this.#closed && this.#backends.get(service) === backend);
  }

  #retryDescribe(service: string, backend: Backend): void {
    if (this.#closed || backend.retry !== undefined) return;
    const delay = Math.min(DESCRIBE_RETRY_MS.max, DESCRIBE_RETRY_MS.first * 2 ** backend.failures);
    backend.failures++;
    backend.retry = setTimeout(() => {
      backend.retry = undefined;
      if (this.#backends.get(service) === backend) this.#describeSoon(service);
    }, delay);
  }

  async #describeAny(
    service: string,
    endpoints: readonly Endpoint[],
  ): Promise<DescribeResponse | undefined> {
    for (const endpoint of endpoints) {
      try {
        return await this.#describeOne(endpoint);
      } catch (error) {
        // A grpc-js channel under Deno may never reconnect after its server went away; the next
        // attempt gets a fresh one.
        this.#dropDescribeClient(endpoint);
        this.#logger.warn("Describe failed", {
          service,
          instance: endpoint.id,
          error: (error as grpc.ServiceError).details ?? String(error),
        });
      }
    }
    return undefined;
  }

  #dropDescribeClient(endpoint: Endpoint): void {
    const target = `${endpoint.address}:${endpoint.port}`;
    this.#describeClients.get(target)?.close();
    this.#describeClients.delete(target);
  }

  #describeOne(endpoint: Endpoint): Promise<DescribeResponse> {
    const target = `${endpoint.address}:${endpoint.port}`;
    let client = this.#describeClients.get(target);
    if (client === undefined) {
      client = new CapabilityClientConstructor(target, grpc.credentials.createInsecure());
      this.#describeClients.set(target, client);
    }
    const deadline = Date.now() + (this.#options.describeTimeoutMs ?? 3_000);
    return new Promise((resolve, reject) => {
      client.describe({}, { deadline }, (error, response) => {
        if (error) reject(error);
        else if (response) resolve(response);
        else reject(new Error(`Empty Describe answer from "${target}"`));
      });
    });
  }

  #publish(): void {
    const services = [...this.#backends.values()]
      .map((backend) => backend.tools)
      .filter((tools): tools is ServiceTools => tools !== undefined);
    const next = mergeCatalog(services);
    if (next.fingerprint === this.#catalog.fingerprint) return;
    this.#catalog = next;
    for (const name of next.conflicts) {
      if (this.#reportedConflicts.has(name)) continue;
      this.#reportedConflicts.add(name);
      const owners = next.tools.filter((tool) => tool.backendName === name).map((tool) =>
        tool.service
      );
      this.#logger.warn("Several services offer the same tool; serving each under a prefix", {
        tool: name,
        services: owners,
        names: owners.map((owner) => `${owner}.${name}`),
      });
    }
    for (const problem of next.problems) this.#logger.warn(problem);
    this.#logger.info("Catalog changed", { tools: next.tools.map((tool) => tool.name) });
    for (const listener of this.#listeners) listener(next);
  }
}

/** The names of the services tagged `platform` in a `/v1/catalog/services` answer, sorted. */
export function platformServices(body: unknown): string[] {
  if (typeof body !== "object" || body === null) {
    throw new TypeError("Expected an object of service names");
  }
  return Object.entries(body as Record<string, unknown>)
    .filter(([, tags]) => Array.isArray(tags) && tags.includes(PLATFORM_TAG))
    .map(([name]) => name)
    .sort();
}
