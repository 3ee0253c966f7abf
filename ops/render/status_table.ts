/** The `status` view: one table row per service, then instances and disagreements. */
import type { ServiceStatus } from "../plan/agreement.ts";
import { formatTable } from "./table.ts";

/** Renders the joined Swarm and Consul view of every service. */
export function formatStatusTable(statuses: readonly ServiceStatus[]): string {
  const rows = statuses.map((status) => [
    status.service,
    status.exists ? `${status.running}/${status.desired}` : "absent",
    status.image || "-",
    status.updateState ?? "-",
    status.consulName === "consul" ? "-" : String(status.passing),
    status.consulName === "consul" ? "-" : String(status.warning),
    status.consulName === "consul" ? "-" : String(status.critical),
    status.converged ? "yes" : "NO",
  ]);
  const lines = [
    formatTable(
      ["SERVICE", "RUNNING", "IMAGE", "UPDATE", "PASSING", "WARNING", "CRITICAL", "AGREE"],
      rows,
    ),
  ];
  for (const status of statuses) {
    if (status.instances.length > 0) {
      lines.push(`${status.service} instances: ${status.instances.join(", ")}`);
    }
    for (const disagreement of status.disagreements) lines.push(`! ${disagreement.message}`);
  }
  return lines.join("\n");
}
