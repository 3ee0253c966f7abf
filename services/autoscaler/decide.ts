/**
 * The scaling decision for one service: a pure function of its policy, its Swarm state, the
 * measured metric and the recent recommendations. Modelled on Kubernetes' HPA: desired =
 * ceil(current x metric / target) (the total over the target), nothing when within a tolerance of
 * 10 %, the lowest recommendation of the up window and the highest of the down window, at most
 * `maxStep` replicas per decision, always within min and max.
 */
import type { Policy } from "./policy.ts";

/** Within this ratio of the target nothing changes (HPA's default tolerance). */
export const TOLERANCE = 0.1;

/** A recommendation made at one evaluation. */
export interface Recommendation {
  /** When, in ms since the epoch. */
  readonly at: number;
  readonly replicas: number;
}

/** What the service looks like right now. */
export interface ServiceObservation {
  /** Replicas asked of Swarm. */
  readonly replicas: number;
  /** Tasks running. */
  readonly running: number;
  /** Swarm's update state when an update or rollback is under way (`updating`, ...), else null. */
  readonly updateState: string | null;
}

/** The metric, summed over every instance, or why there is none. */
export type MetricReading =
  | { readonly kind: "value"; readonly total: number }
  | { readonly kind: "missing"; readonly reason: string };

/** Inputs of {@linkcode decide}. */
export interface DecisionInput {
  readonly policy: Policy;
  readonly service: ServiceObservation;
  readonly metric: MetricReading;
  /** Earlier recommendations for this service, any order. */
  readonly history: readonly Recommendation[];
  /** When the autoscaler began watching this service (ms); the down window needs that long. */
  readonly watchingSince: number;
  readonly now: number;
}

/** Why the decision is what it is. */
export type DecisionState =
  | "scale_up"
  | "scale_down"
  | "steady"
  | "paused"
  | "updating"
  | "converging"
  | "no_data"
  | "stabilising";

/** The decision. */
export interface Decision {
  readonly state: DecisionState;
  /** Replicas to ask for (equal to the current count unless scaling). */
  readonly desired: number;
  /** Sentence for logs and `autoscale status`. */
  readonly reason: string;
  /** The metric per instance, when measured. */
  readonly perInstance: number | null;
  /** The raw recommendation of this evaluation, to remember; null when none was made. */
  readonly recommendation: number | null;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Decides what to do with one service. */
export function decide(input: DecisionInput): Decision {
  const { policy, service, metric, now } = input;
  const current = service.replicas;
  const hold = (state: DecisionState, reason: string, extra: Partial<Decision> = {}) => ({
    state,
    desired: current,
    reason,
    perInstance: null,
    recommendation: null,
    ...extra,
  });

  if (policy.paused) return hold("paused", "paused by the label platform.autoscale.paused=true");
  if (service.updateState !== null) {
    return hold("updating", `a rolling update is in progress (Swarm: ${service.updateState})`);
  }
  if (service.running !== current) {
    return hold("converging", `waiting for Swarm: ${service.running} of ${current} tasks running`);
  }
  if (metric.kind === "missing") {
    return hold("no_data", `not scaling without data: ${metric.reason}`);
  }
  if (!Number.isFinite(metric.total) || metric.total < 0) {
    return hold("no_data", `not scaling on a metric of ${metric.total}`);
  }

  const perInstance = current > 0 ? metric.total / current : metric.total;
  const ratio = perInstance / policy.target;
  const unit = policy.metric === "rps" ? "calls/s" : "in flight";
  const measured = `${round(perInstance)} ${unit} per instance (target ${policy.target})`;
  // Within the tolerance the count stays, unless it is outside min/max.
  const proportional = current > 0 && Math.abs(ratio - 1) <= TOLERANCE + 1e-9
    ? current
    // A hair below an integer is that integer: float noise must not add a replica.
    : Math.ceil(metric.total / policy.target - 1e-9);
  const recommendation = Math.min(policy.max, Math.max(policy.min, proportional));

  const windowed = (seconds: number) => [
    recommendation,
    ...input.history.filter((entry) => entry.at >= now - seconds * 1000 && entry.at <= now)
      .map((entry) => entry.replicas),
  ];
  // The lowest of the up window caps growth on a short spike; the highest of the down window
  // keeps instances until the load has stayed low for the whole window.
  const upLimit = Math.min(...windowed(policy.upWindowSeconds));
  const downLimit = Math.max(...windowed(policy.downWindowSeconds));
  const base = { perInstance, recommendation };

  if (current < policy.min || upLimit > current) {
    const target = Math.max(upLimit, policy.min);
    const desired = Math.min(target, current + policy.maxStep);
    return {
      ...base,
      state: "scale_up",
      desired,
      reason: current < policy.min
        ? `below min ${policy.min}: ${current} -> ${desired}`
        : `${measured}: ${current} -> ${desired}${
          desired < target ? ` (of ${target}, step ${policy.maxStep})` : ""
        }`,
    };
  }
  if (current > policy.max) {
    const desired = Math.max(policy.max, current - policy.maxStep);
    return {
      ...base,
      state: "scale_down",
      desired,
      reason: `above max ${policy.max}: ${current} -> ${desired}`,
    };
  }
  if (recommendation > current) {
    return hold(
      "stabilising",
      `${measured}: ${recommendation} wanted, waiting out the up window of ${policy.upWindowSeconds}s`,
      base,
    );
  }
  if (recommendation < current) {
    const watched = (now - input.watchingSince) / 1000;
    if (watched < policy.downWindowSeconds) {
      return hold(
        "stabilising",
        `${measured}: ${recommendation} wanted, watched ${
          Math.floor(watched)
        }s of the down window of ${policy.downWindowSeconds}s`,
        base,
      );
    }
    if (downLimit >= current) {
      return hold(
        "stabilising",
        `${measured}: ${recommendation} wanted, but ${downLimit} within the down window of ${policy.downWindowSeconds}s`,
        base,
      );
    }
    const desired = Math.max(downLimit, current - policy.maxStep);
    return {
      ...base,
      state: "scale_down",
      desired,
      reason: `${measured}, low for ${policy.downWindowSeconds}s: ${current} -> ${desired}`,
    };
  }
  return hold("steady", `${measured}: ${current} is right`, base);
}

/** Keeps the recommendations a policy's windows can still use. */
export function pruneHistory(
  history: readonly Recommendation[],
  policy: Policy,
  now: number,
): Recommendation[] {
  const keepMs = Math.max(policy.upWindowSeconds, policy.downWindowSeconds) * 1000;
  return history.filter((entry) => entry.at >= now - keepMs && entry.at <= now);
}
