/**
 * Follows the platform's services in Consul (blocking queries on the catalog, then one discovery
 * client per service), describes every passing instance of each and keeps the merged tool catalog
 * that the instances' majority decides (`tool_consensus.ts`). A slow or dead service never blocks
 * readers: they always get the last merged catalog.
 */
import type { DescribeResponse } from "../../proto/mod.ts";
import type { ConsulClient } from "../runtime/consul/client.ts";
import { describeRejected, parseCatalogServices } from "../runtime/consul/health.ts";
import { ConsulWatch } from "../runtime/consul/watch.ts";
import { type Endpoint, ServiceDiscovery } from "../runtime/discovery.ts";
import { type Logger, SILENT_LOGGER } from "../runtime/logger.ts";
import type { StrategyName } from "../runtime/strategies.ts";
import { type Catalog, EMPTY_CATALOG, mergeCatalog, type ServiceTools } from "./catalog.ts";
import { decideSurface } from "./surface_catalog.ts";
import { decideTools, type Dissent } from "./tool_consensus.ts";

/** The Consul tag every agent, tool and worker carries. */
export const PLATFORM_TAG = "platform";

/** Options of {@linkcode BackendDirectory}. */
export interface BackendDirectoryOptions {
  /** The Consul agent and the router's token (catalog read). */
  consul: ConsulClient;
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
  /** Describe answers by instance ID, with the address they came from. */
  readonly answers: Map<string, { target: string; answer: DescribeResponse }>;
  /** Instances left out of a tool's calls, as last decided. */
  dissent: readonly Dissent[];
  describing: Promise<void> | undefined;
  again: boolean;
  /** A pending retry after an instance failed to describe itself. */
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
  #catalog: Catalog = EMPTY_CATALOG;
  #loaded = false;
  #closed = false;
  #reportedConflicts = new Set<string>();

  constructor(options: BackendDirectoryOptions) {
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#watch = new ConsulWatch<string[]>("/v1/catalog/services", {
      consul: options.consul,
      waitSeconds: options.waitSeconds,
      logger: this.#logger,
      parse: (body) => platformServices(body, this.#logger),
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
        consul: this.#options.consul,
        strategy: this.#options.strategyFor?.(service),
        logger: this.#logger.child({ backend: service }),
        waitSeconds: this.#options.waitSeconds,
      });
      const backend: Backend = {
        discovery,
        stopListening: discovery.onChange(() => this.#describeSoon(service)),
        tools: undefined,
        answers: new Map(),
        dissent: [],
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
      const current = new Set(endpoints.map((endpoint) => endpoint.id));
      for (const id of backend.answers.keys()) {
        if (!current.has(id)) backend.answers.delete(id);
      }
      const fresh = endpoints.filter((endpoint) =>
        backend.answers.get(endpoint.id)?.target !== targetOf(endpoint)
      );
      await Promise.all(fresh.map((endpoint) => this.#describeOne(service, backend, endpoint)));
      if (this.#closed || this.#backends.get(service) !== backend) return;
      const descriptions = endpoints.map((endpoint) => ({
        instance: endpoint.id,
        answer: backend.answers.get(endpoint.id)?.answer,
      }));
      const silent = descriptions.filter((entry) => entry.answer === undefined).length;
      // Instances that did not answer (starting up, or a channel that will not reconnect) are
      // asked again later rather than left out until the instances change.
      if (silent > 0) this.#retryDescribe(service, backend);
      else backend.failures = 0;
      if (endpoints.length > 0 && silent === endpoints.length) continue;
      const consensus = decideTools(service, descriptions, { previous: backend.tools });
      // Resources, templates and prompts by the same majority rule as tools.
      const surface = decideSurface(descriptions, backend.tools);
      backend.tools = consensus.tools === undefined && surface === undefined
        ? undefined
        : { ...(consensus.tools ?? { service, version: "", tools: [] }), ...surface };
      backend.discovery.setToolInstances(consensus.allowed);
      this.#reportConsensus(service, backend, consensus.dissent, consensus.undecided);
      this.#publish();
    } while (backend.again && !this.#closed && this.#backends.get(service) === backend);
  }

  #reportConsensus(
    service: string,
    backend: Backend,
    dissent: readonly Dissent[],
    undecided: readonly { tool: string; kept: boolean }[],
  ): void {
    const before = JSON.stringify(backend.dissent);
    backend.dissent = dissent;
    if (JSON.stringify(dissent) === before) return;
    const byTool = new Map<string, string[]>();
    for (const entry of dissent) {
      byTool.set(entry.tool, [
        ...byTool.get(entry.tool) ?? [],
        `${entry.instance} (${entry.reason})`,
      ]);
    }
    for (const [tool, instances] of byTool) {
      this.#logger.warn(
        "Instances describe a tool differently from the majority; they get no calls of it",
        {
          service,
          tool,
          instances,
        },
      );
    }
    for (const entry of undecided) {
      this.#logger.warn(
        entry.kept
          ? "No majority for a tool's version; the previous catalog entry stays"
          : "No majority for a tool's version; the tool is left out",
        { service, tool: entry.tool },
      );
    }
  }

  /** Instances left out of a tool's calls, by service. */
  dissent(): ReadonlyMap<string, readonly Dissent[]> {
    return new Map([...this.#backends].map(([service, backend]) => [service, backend.dissent]));
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

  async #describeOne(service: string, backend: Backend, endpoint: Endpoint): Promise<void> {
    try {
      const answer = await backend.discovery.describe(endpoint, {
        timeoutMs: this.#options.describeTimeoutMs ?? 3_000,
      });
      backend.answers.set(endpoint.id, { target: targetOf(endpoint), answer });
    } catch (error) {
      backend.answers.delete(endpoint.id);
      this.#logger.warn("Describe failed", {
        service,
        instance: endpoint.id,
        error: (error as Error).message,
      });
    }
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
    for (const conflict of next.surface.conflicts) {
      const key = `${conflict.kind}:${conflict.name}`;
      if (this.#reportedConflicts.has(key)) continue;
      this.#reportedConflicts.add(key);
      this.#logger.warn(
        conflict.kind === "prompt"
          ? "Several services offer the same prompt; serving each under a prefix"
          : `Several services offer the same ${conflict.kind}; serving none of them`,
        { [conflict.kind]: conflict.name, services: conflict.services },
      );
    }
    for (const problem of [...next.problems, ...next.surface.problems]) {
      this.#logger.warn(problem);
    }
    this.#logger.info("Catalog changed", { tools: next.tools.map((tool) => tool.name) });
    for (const listener of this.#listeners) listener(next);
  }
}

/**
 * The names of the services tagged `platform` in a `/v1/catalog/services` answer, sorted; names
 * that fail validation are logged and left out.
 */
export function platformServices(body: unknown, logger: Logger = SILENT_LOGGER): string[] {
  const catalog = parseCatalogServices(body);
  for (const entry of catalog.rejected) logger.warn(describeRejected(entry));
  return [...catalog.services].filter(([, tags]) => tags.includes(PLATFORM_TAG))
    .map(([name]) => name);
}

function targetOf(endpoint: Endpoint): string {
  return `${endpoint.address}:${endpoint.port}`;
}
