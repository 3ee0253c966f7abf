/**
 * One evaluation of every autoscaled service: read its policy from its labels, its metric from
 * Prometheus, decide, scale when the decision says so, log the decision with its inputs, and keep
 * the statuses and metrics that `/metrics`, `/status` and `./platform autoscale status` show.
 */
import type { Logger } from "../runtime/logger.ts";
import { MetricsRegistry } from "../runtime/metrics.ts";
import {
  decide,
  type DecisionState,
  type MetricReading,
  pruneHistory,
  type Recommendation,
} from "./decide.ts";
import { describePolicy, parsePolicy, type Policy } from "./policy.ts";
import type { StatusDocument } from "./status.ts";
import type { SwarmPort } from "./swarm.ts";

/** What the autoscaler last decided for one service. */
export interface ServiceStatus {
  /** Swarm's name, e.g. `agent-platform_echo-agent`. */
  readonly service: string;
  /** Without the stack prefix, e.g. `echo-agent`. */
  readonly shortName: string;
  readonly policy: Policy | null;
  /** One line describing the policy, or its problems. */
  readonly policyText: string;
  readonly replicas: number;
  readonly running: number;
  readonly state: DecisionState | "invalid_policy" | "scale_failed";
  readonly desired: number;
  readonly reason: string;
  /** The metric per instance, when measured. */
  readonly perInstance: number | null;
  /** When this was decided, ms since the epoch. */
  readonly at: number;
}

/** Options of {@linkcode Autoscaler}. */
export interface AutoscalerOptions {
  swarm: SwarmPort;
  /** Reads a policy's metric summed over its instances (Prometheus). */
  readMetric: (policy: Policy) => Promise<MetricReading>;
  logger: Logger;
  now: () => number;
  /** Decide and log, never scale. */
  dryRun?: boolean;
  /** Seconds between evaluations, shown in the status document. */
  intervalSeconds?: number;
}

/** Evaluates the autoscaled services; call {@linkcode Autoscaler.evaluate} on a timer. */
export class Autoscaler {
  readonly #options: AutoscalerOptions;
  readonly #history = new Map<string, Recommendation[]>();
  readonly #watchingSince = new Map<string, number>();
  #statuses: ServiceStatus[] = [];
  #lastError: string | null = null;
  #lastEvaluation = 0;
  readonly #registry = new MetricsRegistry();
  readonly #evaluations = this.#registry.counter(
    "platform_autoscaler_evaluations_total",
    "Evaluations by outcome (ok, swarm_error).",
  );
  readonly #scalings = this.#registry.counter(
    "platform_autoscaler_scalings_total",
    "Replica changes asked of Swarm, by service, direction and outcome.",
  );
  readonly #replicas = this.#registry.gauge(
    "platform_autoscaler_replicas",
    "Replicas of the service at the last evaluation.",
  );
  readonly #desired = this.#registry.gauge(
    "platform_autoscaler_desired_replicas",
    "Replicas the last evaluation decided on.",
  );
  readonly #perInstance = this.#registry.gauge(
    "platform_autoscaler_metric_per_instance",
    "The policy's metric per instance at the last evaluation.",
  );
  readonly #target = this.#registry.gauge(
    "platform_autoscaler_target_per_instance",
    "The policy's target per instance.",
  );
  readonly #bounds = this.#registry.gauge(
    "platform_autoscaler_bound_replicas",
    "The policy's min and max replicas.",
  );
  readonly #state = this.#registry.gauge(
    "platform_autoscaler_state",
    "1 for the state of the last decision (steady, scale_up, no_data, paused, ...).",
  );
  readonly #lastEvaluationGauge = this.#registry.gauge(
    "platform_autoscaler_last_evaluation_timestamp_seconds",
    "When the last evaluation ended.",
  );

  constructor(options: AutoscalerOptions) {
    this.#options = options;
  }

  /** The statuses of the last evaluation. */
  get statuses(): readonly ServiceStatus[] {
    return this.#statuses;
  }

  /** The status document of `/status` and of Consul KV. */
  statusDocument(): StatusDocument {
    return {
      at: this.#lastEvaluation,
      error: this.#lastError,
      intervalSeconds: this.#options.intervalSeconds ?? 0,
      services: this.#statuses.map(({ policy, ...status }) => ({
        ...status,
        metric: policy?.metric ?? null,
        target: policy?.target ?? null,
      })),
    };
  }

  /** The Prometheus text exposition. */
  renderMetrics(): string {
    return this.#registry.render();
  }

  /** Evaluates every service once; never throws (failures become statuses and log lines). */
  async evaluate(): Promise<readonly ServiceStatus[]> {
    const { swarm, logger, now } = this.#options;
    let services;
    try {
      services = await swarm.list();
    } catch (error) {
      this.#lastError = (error as Error).message;
      this.#evaluations.inc({ outcome: "swarm_error" });
      logger.error("cannot read Swarm, nothing scaled", { error: this.#lastError });
      this.#lastEvaluation = now();
      return this.#statuses;
    }
    this.#lastError = null;
    const statuses: ServiceStatus[] = [];
    for (const service of services) {
      const status = await this.#evaluateService(service);
      if (status) statuses.push(status);
    }
    const seen = new Set(statuses.map((status) => status.service));
    for (const name of [...this.#history.keys()]) {
      if (!seen.has(name)) {
        this.#history.delete(name);
        this.#watchingSince.delete(name);
      }
    }
    this.#statuses = statuses;
    this.#lastEvaluation = now();
    this.#evaluations.inc({ outcome: "ok" });
    this.#exportStatuses();
    return statuses;
  }

  async #evaluateService(
    service: Awaited<ReturnType<SwarmPort["list"]>>[number],
  ): Promise<ServiceStatus | null> {
    const { logger, now, dryRun } = this.#options;
    const parsed = parsePolicy(service.labels, service.shortName);
    if (parsed.kind === "none") return null;
    const base = {
      service: service.name,
      shortName: service.shortName,
      replicas: service.replicas,
      running: service.running,
    };
    if (parsed.kind === "invalid") {
      const reason = `invalid policy, not scaling: ${parsed.problems.join("; ")}`;
      logger.warn("decision", { ...base, state: "invalid_policy", reason });
      return {
        ...base,
        policy: null,
        policyText: parsed.problems.join("; "),
        state: "invalid_policy",
        desired: service.replicas,
        reason,
        perInstance: null,
        at: now(),
      };
    }
    const policy = parsed.policy;
    const metric = await this.#options.readMetric(policy);
    const at = now();
    if (!this.#watchingSince.has(service.name)) this.#watchingSince.set(service.name, at);
    const history = this.#history.get(service.name) ?? [];
    const decision = decide({
      policy,
      service,
      metric,
      history,
      watchingSince: this.#watchingSince.get(service.name)!,
      now: at,
    });
    const kept = pruneHistory(history, policy, at);
    if (decision.recommendation !== null) kept.push({ at, replicas: decision.recommendation });
    this.#history.set(service.name, kept);

    let state: ServiceStatus["state"] = decision.state;
    let reason = decision.reason;
    const inputs = {
      ...base,
      policy: describePolicy(policy),
      metric: metric.kind === "value" ? metric.total : null,
      perInstance: decision.perInstance,
      recommendation: decision.recommendation,
      updateState: service.updateState,
    };
    if (decision.desired !== service.replicas) {
      const direction = decision.desired > service.replicas ? "up" : "down";
      if (dryRun) {
        reason = `${reason} (dry run: not applied)`;
      } else {
        try {
          await this.#options.swarm.scale(service, decision.desired);
          this.#scalings.inc({ service: service.shortName, direction, outcome: "ok" });
        } catch (error) {
          this.#scalings.inc({ service: service.shortName, direction, outcome: "failed" });
          state = "scale_failed";
          reason = `${reason}; Swarm refused: ${(error as Error).message}`;
        }
      }
      const log = state === "scale_failed" ? logger.error : logger.info;
      log.call(logger, "decision", { ...inputs, state, desired: decision.desired, reason });
    } else {
      logger.info("decision", { ...inputs, state, desired: decision.desired, reason });
    }
    return {
      ...base,
      policy,
      policyText: describePolicy(policy),
      state,
      desired: decision.desired,
      reason,
      perInstance: decision.perInstance,
      at,
    };
  }

  #exportStatuses(): void {
    for (const gauge of [this.#replicas, this.#desired, this.#perInstance, this.#target]) {
      gauge.clear();
    }
    this.#bounds.clear();
    this.#state.clear();
    for (const status of this.#statuses) {
      const service = { service: status.shortName };
      this.#replicas.set(service, status.replicas);
      this.#desired.set(service, status.desired);
      this.#state.set({ ...service, state: status.state }, 1);
      if (status.policy) {
        const metric = { ...service, metric: status.policy.metric };
        this.#target.set(metric, status.policy.target);
        if (status.perInstance !== null) this.#perInstance.set(metric, status.perInstance);
        this.#bounds.set({ ...service, bound: "min" }, status.policy.min);
        this.#bounds.set({ ...service, bound: "max" }, status.policy.max);
      }
    }
    this.#lastEvaluationGauge.set({}, this.#lastEvaluation / 1000);
  }
}
