/**
 * `autoscale status` rows: each autoscaled service's policy (its labels, as the autoscaler reads
 * them), replicas, metric, desired count, and why, from the autoscaler's status document.
 */
import { describePolicy, parsePolicy, PAUSED_LABEL } from "../../services/autoscaler/policy.ts";
import type { StatusDocument } from "../../services/autoscaler/status.ts";

/** One row of `autoscale status`. */
export interface AutoscaleRow {
  /** Name without the stack prefix. */
  readonly service: string;
  readonly policy: string;
  readonly paused: boolean;
  readonly replicas: number | null;
  /** The metric per instance with its unit, e.g. `12.5 calls/s`; null when unknown. */
  readonly metric: string | null;
  readonly desired: number | null;
  readonly state: string;
  readonly why: string;
}

/** Inputs of {@linkcode planAutoscaleStatus}. */
export interface AutoscaleStatusInput {
  readonly stack: string;
  /** Service labels by Swarm name (`<stack>_<service>`). */
  readonly labels: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Replicas by Swarm name. */
  readonly replicas: Readonly<Record<string, number>>;
  /** The autoscaler's document; null when it never wrote one. */
  readonly document: StatusDocument | null;
  readonly now: number;
}

/** The rows, sorted by service, and a note for the whole table (stale or missing status). */
export function planAutoscaleStatus(
  input: AutoscaleStatusInput,
): { rows: AutoscaleRow[]; note: string | null } {
  const prefix = `${input.stack}_`;
  const entries = new Map((input.document?.services ?? []).map((entry) => [entry.service, entry]));
  const rows: AutoscaleRow[] = [];
  for (const [fullName, labels] of Object.entries(input.labels)) {
    const service = fullName.startsWith(prefix) ? fullName.slice(prefix.length) : fullName;
    const parsed = parsePolicy(labels, service);
    if (parsed.kind === "none") continue;
    const entry = entries.get(fullName);
    const replicas = input.replicas[fullName] ?? null;
    const paused = labels[PAUSED_LABEL]?.trim().toLowerCase() === "true";
    const policy = parsed.kind === "valid"
      ? describePolicy(parsed.policy)
      : `invalid: ${parsed.problems.join("; ")}`;
    const unit = parsed.kind === "valid" && parsed.policy.metric === "inflight"
      ? "in flight"
      : "calls/s";
    rows.push({
      service,
      policy,
      paused,
      replicas,
      metric: entry?.perInstance === null || entry?.perInstance === undefined
        ? null
        : `${Math.round(entry.perInstance * 100) / 100} ${unit}`,
      desired: entry?.desired ?? null,
      state: entry?.state ?? "unknown",
      why: entry?.reason ?? "not evaluated by the autoscaler yet",
    });
  }
  rows.sort((a, b) => a.service.localeCompare(b.service));

  let note: string | null = null;
  if (input.document === null) {
    note = "the autoscaler has written no status: is the autoscaler service running?";
  } else if (input.document.error !== null) {
    note = `the autoscaler's last evaluation failed: ${input.document.error}`;
  } else {
    const ageSeconds = Math.round((input.now - input.document.at) / 1000);
    // Three missed evaluations: the autoscaler is stopped, stuck or cannot reach Consul.
    if (ageSeconds > Math.max(30, 3 * input.document.intervalSeconds)) {
      note = `the autoscaler's status is ${ageSeconds}s old: is the autoscaler service running?`;
    }
  }
  return { rows, note };
}
