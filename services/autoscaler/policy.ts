/**
 * A service's autoscaling policy, read from its Swarm service labels at each evaluation:
 * `platform.autoscale.{min,max,metric,target,up_window,down_window,max_step,paused}`.
 */
import { parseDurationSeconds } from "../runtime/config.ts";

/** Prefix of every policy label. */
export const LABEL_PREFIX = "platform.autoscale.";
/** The label that pauses autoscaling of one service (`true`). */
export const PAUSED_LABEL = `${LABEL_PREFIX}paused`;

/** What is measured per instance. */
export type PolicyMetric = "rps" | "inflight";

/** A valid policy. */
export interface Policy {
  readonly min: number;
  readonly max: number;
  /** `rps`: calls per second per instance; `inflight`: calls in flight per instance. */
  readonly metric: PolicyMetric;
  /** The metric's target per instance. */
  readonly target: number;
  /** Scale-up stabilisation: the lowest recommendation of this window wins, in seconds. */
  readonly upWindowSeconds: number;
  /** Scale-down stabilisation: the highest recommendation of this window wins, in seconds. */
  readonly downWindowSeconds: number;
  /** Most replicas added or removed by one decision. */
  readonly maxStep: number;
  /** The `program` label of the service's metrics in Prometheus (default: its stack name). */
  readonly program: string;
  readonly paused: boolean;
}

/** What the labels say: no policy (never scaled), an invalid one (with every problem), or one. */
export type PolicyResult =
  | { readonly kind: "none" }
  | { readonly kind: "invalid"; readonly problems: readonly string[] }
  | { readonly kind: "valid"; readonly policy: Policy };

/** Defaults of the optional labels. */
export const POLICY_DEFAULTS = Object.freeze({
  metric: "rps" as PolicyMetric,
  upWindowSeconds: 0,
  // Kubernetes' HPA default: five minutes of lower recommendations before removing instances.
  downWindowSeconds: 300,
  maxStep: 2,
});

/** A hard ceiling on `max`, so a typo cannot ask Swarm for thousands of tasks. */
export const MAX_REPLICAS = 50;

const PROGRAM = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * Parses the labels of the Swarm service `serviceName` (stack prefix already removed: the default
 * `program`). A service without `min` and `max` labels has no policy.
 */
export function parsePolicy(
  labels: Readonly<Record<string, string>>,
  serviceName: string,
): PolicyResult {
  const label = (name: string) => labels[`${LABEL_PREFIX}${name}`]?.trim();
  if (label("min") === undefined && label("max") === undefined) return { kind: "none" };
  const problems: string[] = [];

  function integer(name: string, fallback: number | undefined, low: number, high: number) {
    const raw = label(name);
    if (raw === undefined || raw === "") {
      if (fallback === undefined) problems.push(`${LABEL_PREFIX}${name} is missing`);
      return fallback ?? low;
    }
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < low || value > high) {
      problems.push(
        `${LABEL_PREFIX}${name} must be an integer from ${low} to ${high}, got "${raw}"`,
      );
      return fallback ?? low;
    }
    return value;
  }

  function duration(name: string, fallback: number) {
    const raw = label(name);
    if (raw === undefined || raw === "") return fallback;
    const seconds = parseDurationSeconds(raw);
    if (seconds === undefined || seconds > 3600) {
      problems.push(
        `${LABEL_PREFIX}${name} must be a duration up to 1h (like "45s"), got "${raw}"`,
      );
      return fallback;
    }
    return seconds;
  }

  const min = integer("min", undefined, 1, MAX_REPLICAS);
  const max = integer("max", undefined, 1, MAX_REPLICAS);
  if (max < min) problems.push(`${LABEL_PREFIX}max (${max}) is below min (${min})`);
  const metricRaw = label("metric") || POLICY_DEFAULTS.metric;
  if (metricRaw !== "rps" && metricRaw !== "inflight") {
    problems.push(`${LABEL_PREFIX}metric must be "rps" or "inflight", got "${metricRaw}"`);
  }
  const targetRaw = label("target");
  const target = Number(targetRaw);
  if (targetRaw === undefined || targetRaw === "") {
    problems.push(`${LABEL_PREFIX}target is missing`);
  } else if (!/^\d+(\.\d+)?$/.test(targetRaw) || !(target > 0) || target > 1e6) {
    problems.push(`${LABEL_PREFIX}target must be a number above 0, got "${targetRaw}"`);
  }
  const program = label("program") || serviceName;
  if (!PROGRAM.test(program)) {
    problems.push(
      `${LABEL_PREFIX}program must be letters, digits, ".", "_" or "-", got "${program}"`,
    );
  }
  const pausedRaw = (label("paused") ?? "false").toLowerCase();
  if (!["true", "false", ""].includes(pausedRaw)) {
    problems.push(`${PAUSED_LABEL} must be "true" or "false", got "${pausedRaw}"`);
  }
  const policy: Policy = {
    min,
    max,
    metric: metricRaw as PolicyMetric,
    target,
    upWindowSeconds: duration("up_window", POLICY_DEFAULTS.upWindowSeconds),
    downWindowSeconds: duration("down_window", POLICY_DEFAULTS.downWindowSeconds),
    maxStep: integer("max_step", POLICY_DEFAULTS.maxStep, 1, MAX_REPLICAS),
    program,
    paused: pausedRaw === "true",
  };
  if (problems.length > 0) return { kind: "invalid", problems };
  return { kind: "valid", policy: Object.freeze(policy) };
}

/** One line describing a policy, for logs and `autoscale status`. */
export function describePolicy(policy: Policy): string {
  const unit = policy.metric === "rps" ? "calls/s" : "in flight";
  return `${policy.min}-${policy.max} replicas, ${policy.target} ${unit} per instance, ` +
    `step ${policy.maxStep}, up ${policy.upWindowSeconds}s, down ${policy.downWindowSeconds}s`;
}
