/**
 * The load-balancing strategy of each backend service: `LB_STRATEGY_<SERVICE>` from the environment
 * first, then the Consul KV key `platform/lb-strategy/<consul service>` (e.g.
 * `platform/lb-strategy/agent-echo` = `least-outstanding`), followed with a blocking query so a
 * change reaches every router within moments; round-robin when neither is set.
 */
import type { ConsulClient } from "../runtime/consul/client.ts";
import { decodeKvValue, kvPath } from "../runtime/consul/kv.ts";
import { isServiceName } from "../runtime/consul/validate.ts";
import { ConsulWatch } from "../runtime/consul/watch.ts";
import { type Logger, SILENT_LOGGER } from "../runtime/logger.ts";
import { parseStrategy, type StrategyName } from "../runtime/strategies.ts";
import { strategyKey } from "./config.ts";

/** The KV prefix under which each key names one Consul service. */
export const STRATEGY_KV_PREFIX = "platform/lb-strategy/";

/** The strategy when neither the environment nor Consul names one. */
export const DEFAULT_STRATEGY: StrategyName = "round-robin";

/** Strategies read from a KV listing, and what was wrong with the entries left out. */
export interface KvStrategies {
  readonly strategies: ReadonlyMap<string, StrategyName>;
  readonly problems: readonly string[];
}

/** Reads the body of `GET /v1/kv/platform/lb-strategy/?recurse` (values are base64). */
export function parseKvStrategies(body: unknown): KvStrategies {
  if (!Array.isArray(body)) throw new TypeError("Consul KV answer is not an array");
  const strategies = new Map<string, StrategyName>();
  const problems: string[] = [];
  for (const entry of body as { Key?: unknown; Value?: unknown }[]) {
    if (typeof entry?.Key !== "string" || !entry.Key.startsWith(STRATEGY_KV_PREFIX)) continue;
    const service = entry.Key.slice(STRATEGY_KV_PREFIX.length);
    // A folder key (`platform/lb-strategy/`) or a nested one names no service.
    if (service === "" || service.includes("/")) continue;
    if (!isServiceName(service)) {
      problems.push(`Invalid Consul KV "${entry.Key}": not a service name`);
      continue;
    }
    const text = typeof entry.Value === "string" ? decodeKvValue(entry.Value) : "";
    try {
      strategies.set(service, parseStrategy(text.trim()));
    } catch (error) {
      problems.push(`Invalid Consul KV "${entry.Key}": ${(error as Error).message}`);
    }
  }
  return { strategies, problems };
}

/** Options of {@linkcode StrategySettings}. */
export interface StrategySettingsOptions {
  /** The Consul agent and the router's token. */
  consul: ConsulClient;
  /** `LB_STRATEGY_<SERVICE>` values keyed by {@linkcode strategyKey}; they win over Consul. */
  fromEnv: ReadonlyMap<string, StrategyName>;
  logger?: Logger;
  /** How long Consul may hold a blocking query; default 30 s. */
  waitSeconds?: number;
}

/** Called with a service whose effective strategy changed, and that strategy. */
export type StrategyListener = (service: string, strategy: StrategyName) => void;

/** Follows the strategy keys in Consul KV and answers the effective strategy of a service. */
export class StrategySettings {
  readonly #fromEnv: ReadonlyMap<string, StrategyName>;
  readonly #logger: Logger;
  readonly #watch: ConsulWatch<KvStrategies>;
  readonly #listeners = new Set<StrategyListener>();
  #fromKv: ReadonlyMap<string, StrategyName> = new Map();
  #reported = new Set<string>();

  constructor(options: StrategySettingsOptions) {
    this.#fromEnv = options.fromEnv;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#watch = new ConsulWatch(kvPath(STRATEGY_KV_PREFIX), {
      consul: options.consul,
      query: { recurse: "" },
      parse: parseKvStrategies,
      notFoundBody: [],
      waitSeconds: options.waitSeconds,
      logger: this.#logger,
    });
    this.#watch.onChange((value) => this.#accept(value));
  }

  /** Starts following Consul. */
  start(): void {
    this.#watch.start();
  }

  /** Resolves once Consul answered once; rejects after `timeoutMs`. */
  async ready(timeoutMs?: number): Promise<void> {
    this.start();
    await this.#watch.ready(timeoutMs);
  }

  /** The strategy `service` should use now. */
  strategyFor(service: string): StrategyName {
    return this.#fromEnv.get(strategyKey(service)) ?? this.#fromKv.get(service) ??
      DEFAULT_STRATEGY;
  }

  /** Adds a listener of effective changes; returns a function that removes it. */
  onChange(listener: StrategyListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops following Consul. */
  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#watch.close();
  }

  #accept({ strategies, problems }: KvStrategies): void {
    for (const problem of problems) {
      if (this.#reported.has(problem)) continue;
      this.#reported.add(problem);
      this.#logger.warn(problem);
    }
    const before = new Map([...new Set([...this.#fromKv.keys(), ...strategies.keys()])].map(
      (service) => [service, this.strategyFor(service)] as const,
    ));
    this.#fromKv = strategies;
    for (const [service, previous] of before) {
      const next = this.strategyFor(service);
      // An environment setting makes the effective strategy ignore Consul: no change then.
      if (next === previous) continue;
      this.#logger.info("Strategy changed", { service, strategy: next, source: "consul" });
      for (const listener of [...this.#listeners]) listener(service, next);
    }
    for (const [service, strategy] of strategies) {
      const fromEnv = this.#fromEnv.get(strategyKey(service));
      if (fromEnv === undefined || fromEnv === strategy) continue;
      const line = `Consul KV "${STRATEGY_KV_PREFIX}${service}" says "${strategy}" but ` +
        `LB_STRATEGY_${strategyKey(service)} says "${fromEnv}": the environment wins`;
      if (this.#reported.has(line)) continue;
      this.#reported.add(line);
      this.#logger.info(line);
    }
  }
}
