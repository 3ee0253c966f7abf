/** The `status` view: one table row per service, then instances and disagreements. */
import type { ServiceStatus } from "../plan/agreement.ts";
import { formatTable } from "./table.ts";

/** HAProxy's states of a service's instances, counted: `2 UP, 1 DRAIN`; `-` when not fronted. */
export function summarizeLb(status: ServiceStatus): string {
  if (!status.lb) return "-";
  const states = [
    ...Object.values(status.lb.byInstance),
    ...status.lb.others.map((server) => server.state),
  ];
  if (states.length === 0) {
    return status.disagreements.some((entry) => entry.kind === "lb-unreachable") ? "?" : "none";
  }
  const counts = new Map<string, number>();
  for (const state of states) counts.set(state, (counts.get(state) ?? 0) + 1);
  return ["UP", "DRAIN", "DOWN", "MAINT", "absent"].filter((state) => counts.has(state))
    .map((state) => `${counts.get(state)} ${state}`).join(", ");
}

/** Renders the joined Swarm, Consul and HAProxy view of every service. */
export function formatStatusTable(statuses: readonly ServiceStatus[]): string {
  const rows = statuses.map((status) => {
    const consul = status.health === "consul";
    return [
      status.service,
      status.exists
        ? `${status.running}/${status.desired}${
          status.draining > 0 ? ` (+${status.draining} draining)` : ""
        }`
        : "absent",
      status.image || "-",
      status.updateState ?? "-",
      consul ? String(status.passing) : "-",
      consul ? String(status.warning) : "-",
      consul ? String(status.critical) : "-",
      summarizeLb(status),
      status.converged ? "yes" : "NO",
    ];
  });
  const lines = [
    formatTable(
      [
        "SERVICE",
        "RUNNING",
        "IMAGE",
        "UPDATE",
        "PASSING",
        "WARNING",
        "CRITICAL",
        "HAPROXY",
        "AGREE",
      ],
      rows,
    ),
  ];
  for (const status of statuses) {
    if (status.instances.length > 0) {
      const lb = status.lb;
      const named = status.instances.map((id) =>
        lb ? `${id} (${lb.byInstance[id] ?? "absent"})` : id
      );
      lines.push(`${status.service} instances: ${named.join(", ")}`);
    }
    for (const server of status.lb?.others ?? []) {
      lines.push(`${status.service} in HAProxy only: ${server.address} (${server.state})`);
    }
    for (const disagreement of status.disagreements) lines.push(`! ${disagreement.message}`);
  }
  return lines.join("\n");
}
