/** HAProxy's view of the MCP routers (its stats CSV), joined with Consul's for `status` and `deploy`. */
import type { HaproxyServer, HaproxyState, HaproxyView } from "../../haproxy/stats_view.ts";
import type { ConsulInstance } from "./state.ts";

/** Something HAProxy and Consul disagree on. */
export interface LbDisagreement {
  kind: "lb-not-up" | "lb-sends-to-unknown" | "lb-unreachable";
  id: string;
  message: string;
}

/** The routers as HAProxy sees them, next to Consul. */
export interface LbJoin {
  /** HAProxy's state per Consul instance ID; `absent` when HAProxy has no server for it. */
  byInstance: Record<string, HaproxyState | "absent">;
  /** HAProxy servers that match no Consul instance (leaving or stale) and may take traffic. */
  others: HaproxyServer[];
  disagreements: LbDisagreement[];
  /** Every passing instance is UP in HAProxy and HAProxy sends to nothing else. */
  agrees: boolean;
}

const RANK: Record<HaproxyState, number> = { UP: 0, DRAIN: 1, DOWN: 2, MAINT: 3 };

/** Joins HAProxy's servers with Consul's instances of the service it fronts. */
export function joinLbView(view: HaproxyView, instances: readonly ConsulInstance[]): LbJoin {
  if (!view.reachable) {
    return {
      byInstance: {},
      others: [],
      disagreements: [{
        kind: "lb-unreachable",
        id: "lb",
        message: `Cannot read HAProxy's view of the routers: ${view.error}`,
      }],
      agrees: false,
    };
  }
  const byInstance: Record<string, HaproxyState | "absent"> = {};
  const disagreements: LbDisagreement[] = [];
  const matched = new Set<HaproxyServer>();
  for (const instance of instances) {
    const address = `${instance.address}:${instance.port}`;
    // A slot that drained keeps the address it had: when the instance came back in another slot,
    // the one taking traffic is the one that counts.
    const candidates = view.servers.filter((candidate) => candidate.address === address);
    candidates.forEach((candidate) => matched.add(candidate));
    const server = candidates.sort((a, b) => RANK[a.state] - RANK[b.state])[0];
    const state = server?.state ?? "absent";
    byInstance[instance.id] = state;
    if (instance.status === "passing" && state !== "UP") {
      disagreements.push({
        kind: "lb-not-up",
        id: instance.id,
        message: `"${instance.id}" passes in Consul but HAProxy has it ${state}`,
      });
    }
    if (instance.status !== "passing" && state === "UP") {
      disagreements.push({
        kind: "lb-sends-to-unknown",
        id: instance.id,
        message: `HAProxy sends to "${instance.id}", which is ${instance.status} in Consul`,
      });
    }
  }
  // A slot in maintenance that no Consul instance holds is a freed slot (its instance drained and
  // left): it takes no traffic and is nobody's, so it is not shown.
  const others = view.servers.filter((server) => !matched.has(server) && server.state !== "MAINT");
  for (const server of others) {
    if (server.state !== "UP") continue;
    disagreements.push({
      kind: "lb-sends-to-unknown",
      id: server.address,
      message: `HAProxy sends to ${server.address} (${server.name}), which Consul does not hold`,
    });
  }
  return { byInstance, others, disagreements, agrees: disagreements.length === 0 };
}
