/** The `lb sync` counters and their Prometheus text form. */

/** What `lb sync` counts. */
export interface LbCounters {
  renders: number;
  renderFailures: number;
  runtimeUpdates: number;
  runtimeFailures: number;
  reloads: number;
  reloadFailures: number;
  failedValidations: number;
  consulUpdates: number;
  /** Consul entries refused by validation (each counted once while it stays in Consul). */
  rejectedEntries: number;
  /** Consul entries refused now. */
  rejectedEntriesNow: number;
  /** Seconds from a Consul change seen to HAProxy updated, for the last change; NaN before one. */
  lastConvergenceSeconds: number;
  /** Unix time in seconds of the last convergence; 0 before one. */
  lastConvergenceTimestamp: number;
}

/** Counters at zero. */
export function emptyLbCounters(): LbCounters {
  return {
    renders: 0,
    renderFailures: 0,
    runtimeUpdates: 0,
    runtimeFailures: 0,
    reloads: 0,
    reloadFailures: 0,
    failedValidations: 0,
    consulUpdates: 0,
    rejectedEntries: 0,
    rejectedEntriesNow: 0,
    lastConvergenceSeconds: Number.NaN,
    lastConvergenceTimestamp: 0,
  };
}

const METRICS: [keyof LbCounters, string, "counter" | "gauge", string][] = [
  ["renders", "lb_renders_total", "counter", "HAProxy configs rendered"],
  ["renderFailures", "lb_render_failures_total", "counter", "Renders that failed in the template"],
  ["runtimeUpdates", "lb_runtime_updates_total", "counter", "Runtime API commands applied"],
  ["runtimeFailures", "lb_runtime_failures_total", "counter", "Runtime API commands refused"],
  ["reloads", "lb_reloads_total", "counter", "Reloads HAProxy took"],
  ["reloadFailures", "lb_reload_failures_total", "counter", "Reloads HAProxy refused"],
  ["failedValidations", "lb_failed_validations_total", "counter", "Configs haproxy -c refused"],
  ["consulUpdates", "lb_consul_updates_total", "counter", "Changes seen in Consul"],
  [
    "rejectedEntries",
    "lb_consul_rejected_entries_total",
    "counter",
    "Consul entries refused by validation (address, port, ID, name)",
  ],
  [
    "rejectedEntriesNow",
    "lb_consul_rejected_entries",
    "gauge",
    "Consul entries refused by validation now",
  ],
  [
    "lastConvergenceSeconds",
    "lb_last_convergence_seconds",
    "gauge",
    "Seconds from the last Consul change seen to HAProxy updated",
  ],
  [
    "lastConvergenceTimestamp",
    "lb_last_convergence_timestamp_seconds",
    "gauge",
    "Unix time of the last convergence",
  ],
];

/** The counters in the Prometheus text exposition format. */
export function renderLbMetrics(counters: LbCounters): string {
  const lines: string[] = [];
  for (const [key, name, type, help] of METRICS) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${counters[key]}`);
  }
  return lines.join("\n") + "\n";
}
