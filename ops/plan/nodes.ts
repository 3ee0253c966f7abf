/** The Swarm's nodes, and which of them run Consul servers and HAProxy (node labels). */

/** One Swarm node, reduced to what the ops tool shows and plans with. */
export interface SwarmNode {
  readonly id: string;
  /** Its hostname, as `docker node ls` shows it: the name every command takes. */
  readonly hostname: string;
  readonly role: "manager" | "worker";
  /** active, pause, drain */
  readonly availability: string;
  /** ready, down, unknown, disconnected */
  readonly state: string;
  readonly address: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Whether this is the node of the engine the ops tool talks to. */
  readonly self: boolean;
  /** Whether it is the Raft leader among the managers. */
  readonly leader: boolean;
}

/** The label of the nodes that run a Consul server. */
export const CONSUL_SERVER_LABEL = "platform.consul";
/** The label of the nodes that run HAProxy (`lb`) and publish the MCP port. */
export const EDGE_LABEL = "platform.edge";

interface RawNode {
  ID: string;
  Description?: { Hostname?: string };
  Spec?: { Role?: string; Availability?: string; Labels?: Record<string, string> };
  Status?: { State?: string; Addr?: string };
  ManagerStatus?: { Leader?: boolean; Addr?: string };
}

/** Turns `docker node inspect` output into nodes, sorted managers first, then by hostname. */
export function parseSwarmNodes(raw: readonly unknown[], selfId: string): SwarmNode[] {
  return (raw as RawNode[]).map((node): SwarmNode => ({
    id: node.ID,
    hostname: node.Description?.Hostname ?? node.ID,
    role: node.Spec?.Role === "manager" ? "manager" : "worker",
    availability: node.Spec?.Availability ?? "active",
    state: node.Status?.State ?? "unknown",
    address: node.Status?.Addr && node.Status.Addr !== "0.0.0.0"
      ? node.Status.Addr
      : (node.ManagerStatus?.Addr ?? "").replace(/:\d+$/, ""),
    labels: { ...node.Spec?.Labels },
    self: node.ID === selfId,
    leader: node.ManagerStatus?.Leader === true,
  })).sort(nodeOrder);
}

function nodeOrder(a: SwarmNode, b: SwarmNode): number {
  const rank = (node: SwarmNode) => node.self ? 0 : node.role === "manager" ? 1 : 2;
  return rank(a) - rank(b) || a.hostname.localeCompare(b.hostname);
}

/** A label change on one node. */
export interface NodeLabelChange {
  readonly node: string;
  readonly id: string;
  readonly add: Readonly<Record<string, string>>;
  readonly why: string;
}

/** Whether a node runs a Consul server by its labels. */
export function isConsulServer(node: SwarmNode): boolean {
  return node.labels[CONSUL_SERVER_LABEL] === "server";
}

/** Whether a node runs HAProxy by its labels. */
export function isEdge(node: SwarmNode): boolean {
  return node.labels[EDGE_LABEL] === "true";
}

/**
 * The labels a deploy adds so the stack can be placed: Consul servers on 3 nodes when 3 or more
 * can take tasks (else 1, on this node); edge nodes (HAProxy) on 2 when 2 or more can (so losing
 * one edge node leaves one serving). A smaller set is topped up; a label is never taken away.
 * This node comes first: the ops tool reaches Consul and the MCP port on it, through 127.0.0.1.
 */
export function planNodeLabels(nodes: readonly SwarmNode[]): NodeLabelChange[] {
  const eligible = [...nodes].sort(nodeOrder)
    .filter((node) => node.availability === "active" && node.state === "ready");
  const changes = new Map<
    string,
    { node: SwarmNode; add: Record<string, string>; why: string[] }
  >();
  const add = (node: SwarmNode, key: string, value: string, why: string) => {
    const entry = changes.get(node.id) ?? { node, add: {}, why: [] };
    entry.add[key] = value;
    entry.why.push(why);
    changes.set(node.id, entry);
  };

  const servers = nodes.filter(isConsulServer).length;
  const wantServers = eligible.length >= 3 ? 3 : 1;
  let missing = wantServers - servers;
  for (const node of eligible) {
    if (missing <= 0) break;
    if (isConsulServer(node)) continue;
    add(
      node,
      CONSUL_SERVER_LABEL,
      "server",
      `Consul server ${wantServers - missing + 1} of ${wantServers}`,
    );
    missing--;
  }

  const wantEdges = Math.min(2, eligible.length);
  let missingEdges = wantEdges - nodes.filter(isEdge).length;
  for (const node of eligible) {
    if (missingEdges <= 0) break;
    if (isEdge(node)) continue;
    add(node, EDGE_LABEL, "true", "edge node (HAProxy)");
    missingEdges--;
  }
  return [...changes.values()].map(({ node, add, why }) => ({
    node: node.hostname,
    id: node.id,
    add,
    why: why.join(", "),
  }));
}

/** How many Consul servers the nodes' labels ask for (the stack's CONSUL_SERVERS). */
export function consulServerCount(
  nodes: readonly SwarmNode[],
  changes: readonly NodeLabelChange[] = [],
): number {
  const labelled = new Set(nodes.filter(isConsulServer).map((node) => node.id));
  for (const change of changes) {
    if (change.add[CONSUL_SERVER_LABEL] === "server") labelled.add(change.id);
  }
  return Math.max(1, labelled.size);
}

/** Finds a node by hostname (or ID); undefined when none matches. */
export function findNode(nodes: readonly SwarmNode[], name: string): SwarmNode | undefined {
  return nodes.find((node) => node.hostname === name) ?? nodes.find((node) => node.id === name);
}

/** One node with the stack's tasks on it. */
export interface NodePlacement {
  readonly node: string;
  readonly id: string;
  readonly role: SwarmNode["role"];
  readonly availability: string;
  readonly state: string;
  readonly address: string;
  readonly consulServer: boolean;
  readonly edge: boolean;
  /** Running tasks per service (stack names without prefix); services with none are left out. */
  readonly running: Readonly<Record<string, number>>;
  /** Tasks that still hold the node but are on their way out (desired shutdown, not yet ended). */
  readonly leaving: number;
}

const ENDED = new Set(["complete", "shutdown", "failed", "rejected", "orphaned", "remove"]);

/** Where the stack's tasks run: per node, the running tasks of each service. */
export function nodePlacement(
  nodes: readonly SwarmNode[],
  services: readonly {
    name: string;
    tasks: readonly { nodeId?: string; state: string; desiredState: string }[];
  }[],
): NodePlacement[] {
  return nodes.map((node) => {
    const running: Record<string, number> = {};
    let leaving = 0;
    for (const service of services) {
      for (const task of service.tasks) {
        if (task.nodeId !== node.id || ENDED.has(task.state)) continue;
        if (task.desiredState === "running" && task.state === "running") {
          running[service.name] = (running[service.name] ?? 0) + 1;
        } else if (task.desiredState !== "running") {
          leaving++;
        }
      }
    }
    return {
      node: node.hostname,
      id: node.id,
      role: node.role,
      availability: node.availability,
      state: node.state,
      address: node.address,
      consulServer: isConsulServer(node),
      edge: isEdge(node),
      running,
      leaving,
    };
  });
}

/** Tasks of the stack still on a node: running, starting or stopping (for `drain`). */
export function tasksOnNode(placement: NodePlacement): number {
  return Object.values(placement.running).reduce((sum, count) => sum + count, 0) +
    placement.leaving;
}
