/** The nodes part of `status` and `cluster`: each node and the stack's instances on it. */
import type { NodePlacement } from "../plan/nodes.ts";
import { formatTable } from "./table.ts";

/** One row per node: role, availability, state, roles in the stack, then a count per service. */
export function formatNodeTable(
  placement: readonly NodePlacement[],
  services: readonly string[],
): string {
  const rows = placement.map((node) => [
    node.node,
    node.role,
    node.availability,
    node.state,
    node.address || "-",
    [node.consulServer ? "consul-server" : "", node.edge ? "edge" : ""].filter(Boolean).join(",") ||
    "-",
    ...services.map((service) => String(node.running[service] ?? 0)),
  ]);
  return formatTable(
    ["NODE", "ROLE", "AVAILABILITY", "STATE", "ADDRESS", "LABELS", ...services],
    rows,
  );
}
