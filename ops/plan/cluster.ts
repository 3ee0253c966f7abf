/**
 * The local multi-node Swarm of `cluster` (pure): node names and addresses, what the host holds
 * (parsed from `ip -j`, `docker node inspect`, /proc), and the steps of `up` and `down`.
 *
 * Node 1 is the machine's own engine (a manager). Node i >= 2 is a `dockerd` in the network
 * namespace `platform-<i>`, linked to the host by a veth pair (`pf-<i>` 10.213.<i>.1/24 on the host,
 * `eth0` 10.213.<i>.2/24 inside), routed by the host. Nothing is kept in a state file: every step is
 * derived from what the host shows, so nothing can go stale.
 */
import { UsageError } from "../errors.ts";

/** Prefix of a node's name, network namespace and Swarm hostname (`platform-2`). */
export const NODE_PREFIX = "platform-";
/** The dummy interface holding {@linkcode HOST_ADDRESS}. */
export const HOST_INTERFACE = "pf-host";
/** The host's address on the cluster's links, reachable from every node through routing. */
export const HOST_ADDRESS = "10.213.0.1";
/**
 * The cluster's addresses. The host holds a blackhole route for all of them, so a packet for a cut
 * node is dropped here instead of following the default route out of the machine (where this
 * test machine's gateway even accepted TCP connections for them).
 */
export const CLUSTER_NETWORK = "10.213.0.0/16";
/** Where the platform's own image registry listens; every node trusts it over plain HTTP. */
export const REGISTRY_ADDRESS = `${HOST_ADDRESS}:5000`;
/** Nodes when `--nodes` is not given. */
export const DEFAULT_NODES = 3;
/**
 * The most nodes `up` makes. The addresses allow 254; each engine costs about 60 MB and a share of
 * two cores, so more than this is a typo, not a test.
 */
export const MAX_NODES = 16;
/** Swarm's manager port, which workers join through. */
export const SWARM_PORT = 2377;
/** How the host forwards between the cluster's links (Docker sets FORWARD's policy to DROP). */
export const FORWARD_RULES: readonly (readonly string[])[] = [
  ["-i", "pf-+", "-m", "comment", "--comment", "platform-cluster", "-j", "ACCEPT"],
  ["-o", "pf-+", "-m", "comment", "--comment", "platform-cluster", "-j", "ACCEPT"],
];

/** Where node engines keep their files. */
export interface ClusterPaths {
  /** Parent of every node's `--data-root`. */
  readonly dataDir: string;
  /** Parent of every node's `--exec-root`, socket, pid file and config file. */
  readonly runDir: string;
  /** Where each node's engine log goes. */
  readonly logDir: string;
  /** Where `ip netns` keeps its namespaces. */
  readonly netnsDir: string;
}

/** The lock every changing `cluster` command holds, so two never interleave their steps. */
export function lockPath(paths: ClusterPaths = CLUSTER_PATHS): string {
  return `${paths.runDir}.lock`;
}

/** The paths used on a real host. */
export const CLUSTER_PATHS: ClusterPaths = Object.freeze({
  dataDir: "/var/lib/platform-cluster",
  runDir: "/run/platform-cluster",
  logDir: "/var/log/platform-cluster",
  netnsDir: "/var/run/netns",
});

/** Everything about node `index` (>= 2) that follows from its number. */
export interface NodeLayout {
  readonly index: number;
  /** Swarm hostname, network namespace name and the name every command takes. */
  readonly name: string;
  readonly namespace: string;
  readonly namespacePath: string;
  /** The host side of the veth pair; the namespace side is `eth0`. */
  readonly hostLink: string;
  /** The link's network (`10.213.<i>.0/24`). */
  readonly network: string;
  /** Host side address, the node's default gateway. */
  readonly gateway: string;
  /** The node's address (namespace side), which it advertises to the Swarm. */
  readonly address: string;
  readonly prefixLength: number;
  /** Path of the engine's API socket. */
  readonly socketPath: string;
  /** The engine's API as `docker -H` takes it. */
  readonly dockerHost: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly pidFile: string;
  readonly configFile: string;
  readonly logFile: string;
  /** Parent cgroup of the node's containers, so leftovers are found by path. */
  readonly cgroupParent: string;
}

/** The layout of node `index`. */
export function nodeLayout(index: number, paths: ClusterPaths = CLUSTER_PATHS): NodeLayout {
  if (!Number.isInteger(index) || index < 2 || index > 254) {
    throw new RangeError(`Node index must be an integer from 2 to 254, got ${index}`);
  }
  const name = `${NODE_PREFIX}${index}`;
  return Object.freeze({
    index,
    name,
    namespace: name,
    namespacePath: `${paths.netnsDir}/${name}`,
    hostLink: `pf-${index}`,
    network: `10.213.${index}.0/24`,
    gateway: `10.213.${index}.1`,
    address: `10.213.${index}.2`,
    prefixLength: 24,
    socketPath: `${paths.runDir}/${name}.sock`,
    dockerHost: `unix://${paths.runDir}/${name}.sock`,
    dataRoot: `${paths.dataDir}/${name}`,
    execRoot: `${paths.runDir}/${name}`,
    pidFile: `${paths.runDir}/${name}.pid`,
    configFile: `${paths.runDir}/${name}.json`,
    logFile: `${paths.logDir}/${name}.log`,
    cgroupParent: `/platform-cluster/${name}`,
  });
}

/** The index of a node we make from its name (`platform-3` -> 3), else undefined. */
export function nodeIndex(name: string): number | undefined {
  const match = /^platform-([1-9]\d{0,2})$/.exec(name);
  if (!match) return undefined;
  const index = Number(match[1]);
  return index >= 2 && index <= 254 ? index : undefined;
}

/** The index of a host link we make from its name (`pf-3` -> 3), else undefined. */
export function linkIndex(name: string): number | undefined {
  const match = /^pf-([1-9]\d{0,2})$/.exec(name);
  if (!match) return undefined;
  const index = Number(match[1]);
  return index >= 2 && index <= 254 ? index : undefined;
}

/** Parses `--nodes`: an integer from 1 to {@linkcode MAX_NODES}, else a usage error. */
export function parseNodeCount(text: string | undefined): number {
  if (text === undefined) return DEFAULT_NODES;
  const trimmed = text.trim();
  const count = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || count < 1 || count > MAX_NODES) {
    throw new UsageError(
      `Invalid node count "${text}": expected an integer from 1 to ${MAX_NODES}`,
    );
  }
  return count;
}

/** Quotes one word for `sh`. */
function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

/**
 * The program and arguments that start node `layout`'s engine, detached from the caller's session.
 * `nsenter --net` rather than `ip netns exec`: the latter remounts /sys, hiding the cgroup mounts the
 * engine needs. `unshare --uts` gives the node its own hostname, which is its Swarm node name.
 */
export function engineCommand(layout: NodeLayout, dockerd = "dockerd"): string[] {
  const args = [
    dockerd,
    "--config-file",
    layout.configFile,
    "--data-root",
    layout.dataRoot,
    "--exec-root",
    layout.execRoot,
    "--pidfile",
    layout.pidFile,
    "-H",
    layout.dockerHost,
    "--insecure-registry",
    REGISTRY_ADDRESS,
    "--cgroup-parent",
    layout.cgroupParent,
  ];
  const script = `hostname ${shellQuote(layout.name)} && exec ${args.map(shellQuote).join(" ")} ` +
    `>>${shellQuote(layout.logFile)} 2>&1 </dev/null`;
  return [
    "setsid",
    "nsenter",
    `--net=${layout.namespacePath}`,
    "unshare",
    "--uts",
    "sh",
    "-c",
    script,
  ];
}

// ---------------------------------------------------------------------------------------------
// What the host shows

/** One network interface, from `ip -j addr show`. */
export interface LinkState {
  name: string;
  /** Administratively up (`ip link set up`). */
  up: boolean;
  /** IPv4 addresses as `a.b.c.d/len`. */
  addresses: string[];
}

/** Parses `ip -j addr show` (or `ip -j link show`, which has no addresses). Hostile-safe. */
export function parseIpLinks(json: string): LinkState[] {
  let entries: unknown;
  try {
    entries = JSON.parse(json.trim() === "" ? "[]" : json);
  } catch {
    throw new Error(`Cannot parse the output of "ip -j": ${json.slice(0, 200)}`);
  }
  if (!Array.isArray(entries)) return [];
  const links: LinkState[] = [];
  for (const entry of entries) {
    if (typeof entry !== "object" || entry === null) continue;
    const record = entry as Record<string, unknown>;
    if (typeof record.ifname !== "string") continue;
    const flags = Array.isArray(record.flags) ? record.flags : [];
    const addresses: string[] = [];
    for (const info of Array.isArray(record.addr_info) ? record.addr_info : []) {
      const address = info as Record<string, unknown>;
      if (address.family === "inet" && typeof address.local === "string") {
        addresses.push(`${address.local}/${Number(address.prefixlen)}`);
      }
    }
    links.push({ name: record.ifname, up: flags.includes("UP"), addresses });
  }
  return links;
}

/** Parses `ip -j route show default`: the first default gateway, else undefined. */
export function parseDefaultGateway(json: string): string | undefined {
  let entries: unknown;
  try {
    entries = JSON.parse(json.trim() === "" ? "[]" : json);
  } catch {
    return undefined;
  }
  if (!Array.isArray(entries)) return undefined;
  for (const entry of entries) {
    const route = entry as Record<string, unknown> | null;
    if (route?.dst === "default" && typeof route.gateway === "string") return route.gateway;
  }
  return undefined;
}

/** One route of the host's main table, from `ip -j route show`. */
export interface RouteEntry {
  dst: string;
  dev: string | undefined;
  /** The source address the host picks for packets on this route. */
  source: string | undefined;
}

/** Parses `ip -j route show`. */
export function parseRoutes(json: string): RouteEntry[] {
  let entries: unknown;
  try {
    entries = JSON.parse(json.trim() === "" ? "[]" : json);
  } catch {
    throw new Error(`Cannot parse the output of "ip -j route": ${json.slice(0, 200)}`);
  }
  if (!Array.isArray(entries)) return [];
  return entries.filter((entry) => typeof entry?.dst === "string").map((entry) => ({
    dst: entry.dst,
    dev: typeof entry.dev === "string" ? entry.dev : undefined,
    source: typeof entry.prefsrc === "string" ? entry.prefsrc : undefined,
  }));
}

/** Whether `ip -j route show exact <cidr>` lists a blackhole route for `cidr`. */
export function parseBlackhole(json: string, cidr: string): boolean {
  let entries: unknown;
  try {
    entries = JSON.parse(json.trim() === "" ? "[]" : json);
  } catch {
    return false;
  }
  return Array.isArray(entries) &&
    entries.some((entry) => entry?.type === "blackhole" && entry?.dst === cidr);
}

/** Parses `ip netns list` (`name (id: 0)` per line) into names. */
export function parseNetnsList(text: string): string[] {
  return text.split("\n").map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name !== "");
}

/** One Swarm node, as the manager sees it. */
export interface SwarmNode {
  id: string;
  /** The node's hostname: its name in every command. */
  hostname: string;
  role: "manager" | "worker";
  /** Active, Pause or Drain, as `docker node ls` shows it. */
  availability: string;
  /** Ready, Down, Unknown or Disconnected, as `docker node ls` shows it. */
  state: string;
  /** The address the node advertises. */
  address: string;
  /** Leader, Reachable or Unreachable for managers, else undefined. */
  managerStatus: string | undefined;
}

function capitalise(text: string): string {
  return text === "" ? text : `${text[0].toUpperCase()}${text.slice(1)}`;
}

/** Parses `docker node inspect` (a JSON array). */
export function parseSwarmNodes(json: string): SwarmNode[] {
  const entries = JSON.parse(json.trim() === "" ? "[]" : json) as unknown;
  if (!Array.isArray(entries)) return [];
  const nodes: SwarmNode[] = [];
  for (const entry of entries) {
    const node = entry as {
      ID?: string;
      Spec?: { Role?: string; Availability?: string };
      Description?: { Hostname?: string };
      Status?: { State?: string; Addr?: string };
      ManagerStatus?: { Leader?: boolean; Reachability?: string; Addr?: string };
    } | null;
    if (!node?.ID) continue;
    const role = node.Spec?.Role === "manager" ? "manager" : "worker";
    // A manager listening on 0.0.0.0 reports that as Status.Addr; its manager address is real.
    let address = node.Status?.Addr ?? "";
    if ((address === "" || address === "0.0.0.0") && node.ManagerStatus?.Addr) {
      address = node.ManagerStatus.Addr.replace(/:\d+$/, "");
    }
    nodes.push({
      id: node.ID,
      hostname: node.Description?.Hostname ?? "",
      role,
      availability: capitalise(node.Spec?.Availability ?? "unknown"),
      state: capitalise(node.Status?.State ?? "unknown"),
      address,
      managerStatus: node.ManagerStatus
        ? (node.ManagerStatus.Leader ? "Leader" : capitalise(node.ManagerStatus.Reachability ?? ""))
        : undefined,
    });
  }
  return nodes;
}

/** The Swarm entry that stands for `hostname`: a Ready one first, else the first listed. */
export function swarmEntry(
  nodes: readonly SwarmNode[],
  hostname: string,
): SwarmNode | undefined {
  const named = nodes.filter((node) => node.hostname === hostname);
  return named.find((node) => node.state === "Ready") ?? named[0];
}

/** Whether an IPv4 or IPv6 address is a loopback one, which no other node can reach. */
export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === "::1" || address === "localhost";
}

/** One mount, from /proc/self/mountinfo. */
export interface MountEntry {
  mountPoint: string;
}

/** Parses /proc/self/mountinfo into mount points (octal escapes decoded). */
export function parseMountinfo(text: string): MountEntry[] {
  const mounts: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    if (fields.length < 5) continue;
    const mountPoint = fields[4].replace(
      /\\([0-7]{3})/g,
      (_, octal: string) => String.fromCharCode(parseInt(octal, 8)),
    );
    mounts.push({ mountPoint });
  }
  return mounts;
}

function isUnder(path: string, root: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

/** Mount points under any of `roots`, deepest first, so each unmounts before its parent. */
export function mountsUnder(mounts: readonly MountEntry[], roots: readonly string[]): string[] {
  const found = new Set<string>();
  for (const mount of mounts) {
    if (roots.some((root) => isUnder(mount.mountPoint, root))) found.add(mount.mountPoint);
  }
  return [...found].sort((a, b) => b.split("/").length - a.split("/").length || b.localeCompare(a));
}

/** One process, from /proc/<pid>/cmdline and /proc/<pid>/cgroup. */
export interface ProcessEntry {
  pid: number;
  args: string[];
  /** The process's cgroup paths (one per hierarchy). */
  cgroups: string[];
}

/** Parses /proc/<pid>/cgroup (`id:controllers:path` per line) into paths. */
export function parseCgroupPaths(text: string): string[] {
  return text.split("\n").map((line) => line.split(":").slice(2).join(":"))
    .filter((path) => path !== "");
}

/**
 * The processes that belong to node `layout`: its engine, containerd and shims (an argument names its
 * exec root, data root, socket or pid file) and its containers (their cgroup is under the node's).
 */
export function processesOfNode(
  processes: readonly ProcessEntry[],
  layout: NodeLayout,
): number[] {
  const roots = [layout.execRoot, layout.dataRoot];
  const files = [layout.socketPath, layout.dockerHost, layout.pidFile];
  function names(arg: string): boolean {
    const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : arg;
    return files.includes(value) || roots.some((root) => isUnder(value, root));
  }
  return processes.filter((entry) =>
    entry.args.some(names) || entry.cgroups.some((path) => isUnder(path, layout.cgroupParent))
  ).map((entry) => entry.pid);
}

/** The engines of the nodes we make among `processes`: a dockerd naming a node's pid file, by index. */
export function engineProcesses(
  processes: readonly ProcessEntry[],
  paths: ClusterPaths = CLUSTER_PATHS,
): Map<number, number> {
  const engines = new Map<number, number>();
  for (const entry of processes) {
    if (entry.args[0]?.split("/").pop() !== "dockerd") continue;
    const at = entry.args.indexOf("--pidfile");
    const pidFile = at >= 0 ? entry.args[at + 1] ?? "" : "";
    if (!pidFile.startsWith(`${paths.runDir}/`)) continue;
    const index = nodeIndex(pidFile.slice(paths.runDir.length + 1).replace(/\.pid$/, ""));
    if (index !== undefined) engines.set(index, entry.pid);
  }
  return engines;
}

/** The node index a file or directory of ours is named after (`platform-2.sock` -> 2). */
export function fileIndex(name: string): number | undefined {
  return nodeIndex(name.replace(/\.(sock|pid|json|log)$/, ""));
}

// ---------------------------------------------------------------------------------------------
// Plans

/** What the host shows of the cluster's network and engines. */
export interface HostSnapshot {
  /** The dummy interface, when it exists. */
  hostInterface: LinkState | undefined;
  /** Whether the host has its blackhole route for {@linkcode CLUSTER_NETWORK}. */
  blackhole: boolean;
  /** Whether each of {@linkcode FORWARD_RULES} is in FORWARD. */
  forwardRules: boolean[];
  ipForward: boolean;
  /** Host links (only the `pf-<i>` ones matter). */
  links: LinkState[];
  /** The host's main routing table. */
  routes: RouteEntry[];
  /** Network namespace names. */
  namespaces: string[];
  /** Per node index: what its namespace shows, when it exists. */
  inside: Map<number, NamespaceNetwork>;
  /** Per node index: the pid of its engine, when one runs. */
  engines: Map<number, number>;
  /** Node indices with files (data root, exec root, log...) or processes left on the host. */
  remains: number[];
}

/** The network inside a node's namespace. */
export interface NamespaceNetwork {
  eth0: LinkState | undefined;
  loUp: boolean;
  gateway: string | undefined;
}

/** One step of `up` or `down`; `node` is a node index. */
export type ClusterStep =
  | { kind: "ip-forward" }
  | { kind: "host-interface" }
  | { kind: "host-route" }
  | { kind: "forward-rule"; rule: readonly string[] }
  | { kind: "namespace"; node: number }
  | { kind: "link"; node: number }
  | { kind: "link-address"; node: number }
  | { kind: "link-up"; node: number }
  | { kind: "link-route"; node: number; source: string }
  | { kind: "namespace-network"; node: number }
  | { kind: "start-engine"; node: number }
  | { kind: "stop-engine"; node: number; pid: number }
  | { kind: "remove-swarm-node"; node: number; id: string }
  | { kind: "clean-node"; node: number }
  | { kind: "remove-link"; node: number }
  | { kind: "remove-namespace"; node: number }
  | { kind: "remove-host-interface" }
  | { kind: "remove-host-route" }
  | { kind: "remove-forward-rule"; rule: readonly string[] };

/** A step as one line for people. */
export function describeStep(step: ClusterStep): string {
  const node = "node" in step ? `${NODE_PREFIX}${step.node}` : "";
  switch (step.kind) {
    case "ip-forward":
      return "enable IPv4 forwarding";
    case "host-interface":
      return `add interface ${HOST_INTERFACE} ${HOST_ADDRESS}/32`;
    case "host-route":
      return `ip route add blackhole ${CLUSTER_NETWORK}`;
    case "remove-host-route":
      return `ip route del blackhole ${CLUSTER_NETWORK}`;
    case "forward-rule":
      return `iptables -I FORWARD ${step.rule.join(" ")}`;
    case "namespace":
      return `add network namespace ${node}`;
    case "link": {
      const layout = nodeLayout(step.node);
      return `add link ${layout.hostLink} <-> ${node}:eth0`;
    }
    case "link-address": {
      const layout = nodeLayout(step.node);
      return `address ${layout.hostLink} ${layout.gateway}/${layout.prefixLength}`;
    }
    case "link-up":
      return `bring ${nodeLayout(step.node).hostLink} up`;
    case "link-route": {
      const layout = nodeLayout(step.node);
      return `ip route replace ${layout.network} dev ${layout.hostLink} src ${step.source}`;
    }
    case "namespace-network": {
      const layout = nodeLayout(step.node);
      return `${node}: eth0 ${layout.address}/${layout.prefixLength}, default via ${layout.gateway}`;
    }
    case "start-engine":
      return `start the engine of ${node}`;
    case "stop-engine":
      return `stop the engine of ${node} (pid ${step.pid})`;
    case "remove-swarm-node":
      return `remove ${node} (${step.id}) from the Swarm`;
    case "clean-node":
      return `remove leftover processes, mounts and files of ${node}`;
    case "remove-link":
      return `remove link ${nodeLayout(step.node).hostLink}`;
    case "remove-namespace":
      return `remove network namespace ${node}`;
    case "remove-host-interface":
      return `remove interface ${HOST_INTERFACE}`;
    case "remove-forward-rule":
      return `iptables -D FORWARD ${step.rule.join(" ")}`;
  }
}

/** The node indices of a cluster of `count` nodes (node 1 is the machine's engine). */
export function nodeIndices(count: number): number[] {
  return Array.from({ length: Math.max(0, count - 1) }, (_, i) => i + 2);
}

/**
 * Whether the host routes to node `layout` from `source`. The kernel's own route for a link picks
 * the link's address as source, but the overlay networks' VXLAN packets must leave from the
 * manager's advertised address, the tunnel end the nodes know it by: measured here (Linux 6.18), a
 * node dropped every VXLAN packet from the link's address for an endpoint its table put at the
 * advertised address (containers on node 1 could not reach containers on the nodes).
 */
export function routesFrom(routes: readonly RouteEntry[], layout: NodeLayout, source: string) {
  return routes.some((route) =>
    route.dst === layout.network && route.dev === layout.hostLink && route.source === source
  );
}

/** Options of {@linkcode planUp}. */
export interface PlanUpOptions {
  /** The manager's advertised address: the source of the host's packets to the nodes. */
  source: string;
}

/**
 * The network and engine steps that make nodes 2..`count` exist, from what the host shows; empty
 * when everything is there. Nodes beyond `count` are left alone (`down` removes them). A cut link is
 * brought up: `up` makes the cluster whole.
 */
export function planUp(count: number, host: HostSnapshot, options: PlanUpOptions): ClusterStep[] {
  const steps: ClusterStep[] = [];
  const indices = nodeIndices(count);
  if (indices.length === 0) return steps;
  if (!host.ipForward) steps.push({ kind: "ip-forward" });
  const dummy = host.hostInterface;
  if (!dummy || !dummy.up || !dummy.addresses.includes(`${HOST_ADDRESS}/32`)) {
    steps.push({ kind: "host-interface" });
  }
  if (!host.blackhole) steps.push({ kind: "host-route" });
  FORWARD_RULES.forEach((rule, i) => {
    if (!host.forwardRules[i]) steps.push({ kind: "forward-rule", rule });
  });
  for (const index of indices) {
    const layout = nodeLayout(index);
    const hasNamespace = host.namespaces.includes(layout.namespace);
    const link = host.links.find((entry) => entry.name === layout.hostLink);
    const inside = host.inside.get(index);
    // A link without its namespace (or the reverse) is half made: make the pair again.
    if (!hasNamespace || !inside?.eth0 || !link) {
      if (link) steps.push({ kind: "remove-link", node: index });
      if (!hasNamespace) steps.push({ kind: "namespace", node: index });
      steps.push({ kind: "link", node: index }, { kind: "link-address", node: index });
      steps.push({ kind: "link-up", node: index });
      steps.push({ kind: "link-route", node: index, source: options.source });
      steps.push({ kind: "namespace-network", node: index });
    } else {
      const cidr = `${layout.gateway}/${layout.prefixLength}`;
      if (!link.addresses.includes(cidr)) steps.push({ kind: "link-address", node: index });
      if (!link.up) steps.push({ kind: "link-up", node: index });
      if (!link.up || !routesFrom(host.routes, layout, options.source)) {
        steps.push({ kind: "link-route", node: index, source: options.source });
      }
      const eth0 = inside.eth0;
      if (
        !eth0.up || !inside.loUp || inside.gateway !== layout.gateway ||
        !eth0.addresses.includes(`${layout.address}/${layout.prefixLength}`)
      ) {
        steps.push({ kind: "namespace-network", node: index });
      }
    }
    if (!host.engines.has(index)) steps.push({ kind: "start-engine", node: index });
  }
  return steps;
}

/** What `up` does to join one node's engine, from the engine's and the manager's view. */
export interface JoinPlan {
  /** The engine is in a Swarm the manager does not know it in: leave that first. */
  leave: boolean;
  /** Stale manager entries with the node's hostname (Down, or another ID) to remove. */
  removeStale: string[];
  join: boolean;
}

/** The engine of one node, as its own `docker info` tells. */
export interface NodeEngineInfo {
  /** inactive, pending, active, error, locked */
  swarmState: string;
  nodeId: string;
  /** The node IDs of the managers it knows (`Swarm.RemoteManagers`). */
  managerIds: string[];
}

/** Decides how node `name` joins the Swarm of the manager whose node ID is `managerId`. */
export function planJoin(
  name: string,
  engine: NodeEngineInfo,
  manager: { managerId: string; nodes: readonly SwarmNode[] },
): JoinPlan {
  const entries = manager.nodes.filter((node) => node.hostname === name);
  const member = engine.swarmState === "active" && engine.managerIds.includes(manager.managerId) &&
    entries.some((node) => node.id === engine.nodeId);
  const removeStale = entries.filter((node) => !member || node.id !== engine.nodeId)
    .map((node) => node.id);
  return {
    leave: !member && engine.swarmState !== "inactive",
    removeStale,
    join: !member,
  };
}

/**
 * The steps that remove every node `up` made, from what the host and the manager show: engines
 * first (so none rejoins), then Swarm entries, leftovers, links, namespaces, and the host's own
 * interface and rules. Empty when nothing is left.
 */
export function planDown(host: HostSnapshot, swarmNodes: readonly SwarmNode[]): ClusterStep[] {
  const indices = new Set<number>();
  for (const name of host.namespaces) {
    const index = nodeIndex(name);
    if (index !== undefined) indices.add(index);
  }
  for (const link of host.links) {
    const index = linkIndex(link.name);
    if (index !== undefined) indices.add(index);
  }
  for (const index of host.engines.keys()) indices.add(index);
  for (const index of host.remains) indices.add(index);
  for (const node of swarmNodes) {
    const index = nodeIndex(node.hostname);
    if (index !== undefined && node.role === "worker") indices.add(index);
  }
  const steps: ClusterStep[] = [];
  const sorted = [...indices].sort((a, b) => a - b);
  for (const index of sorted) {
    const pid = host.engines.get(index);
    if (pid !== undefined) steps.push({ kind: "stop-engine", node: index, pid });
  }
  for (const index of sorted) {
    const name = `${NODE_PREFIX}${index}`;
    for (const node of swarmNodes) {
      if (node.hostname === name && node.role === "worker") {
        steps.push({ kind: "remove-swarm-node", node: index, id: node.id });
      }
    }
  }
  for (const index of sorted) {
    const layout = nodeLayout(index);
    if (host.engines.has(index) || host.remains.includes(index)) {
      steps.push({ kind: "clean-node", node: index });
    }
    if (host.links.some((link) => link.name === layout.hostLink)) {
      steps.push({ kind: "remove-link", node: index });
    }
    if (host.namespaces.includes(layout.namespace)) {
      steps.push({ kind: "remove-namespace", node: index });
    }
  }
  if (host.hostInterface) steps.push({ kind: "remove-host-interface" });
  if (host.blackhole) steps.push({ kind: "remove-host-route" });
  FORWARD_RULES.forEach((rule, i) => {
    if (host.forwardRules[i]) steps.push({ kind: "remove-forward-rule", rule });
  });
  return steps;
}

// ---------------------------------------------------------------------------------------------
// Views

/** One node as `cluster status` shows it. */
export interface ClusterNodeView {
  /** The Swarm hostname, the name every command takes. */
  name: string;
  /** 1 for the machine's engine, i for `platform-<i>`, null for a node the cluster did not make. */
  index: number | null;
  /** The Swarm node ID, null when the node is not in the Swarm. */
  id: string | null;
  role: string | null;
  availability: string | null;
  /** Ready, Down, ... as the manager sees it; NotInSwarm when it has no entry. */
  state: string;
  address: string | null;
  /** The node's network namespace; null for the machine's engine. */
  namespace: string | null;
  /** The Docker socket of the node's engine (`unix://...`); null when not on this machine. */
  socket: string | null;
  /** Whether its link is down (`cluster cut`). */
  cut: boolean;
}

/** What {@linkcode clusterView} needs besides the Swarm's nodes. */
export interface ClusterViewInput {
  /** The machine engine's own Swarm node ID. */
  selfId: string;
  /** The machine engine's socket (`unix:///var/run/docker.sock`). */
  selfSocket: string;
  swarmNodes: readonly SwarmNode[];
  host: Pick<HostSnapshot, "links" | "namespaces">;
}

/** The nodes in order: the machine's engine, the nodes we made by index, then any others. */
export function clusterView(input: ClusterViewInput): ClusterNodeView[] {
  const views: ClusterNodeView[] = [];
  const used = new Set<string>();
  const self = input.swarmNodes.find((node) => node.id === input.selfId);
  if (self) {
    used.add(self.id);
    views.push({ ...swarmFields(self), index: 1, namespace: null, socket: input.selfSocket });
  }
  const indices = new Set<number>();
  for (const name of input.host.namespaces) {
    const index = nodeIndex(name);
    if (index !== undefined) indices.add(index);
  }
  for (const node of input.swarmNodes) {
    const index = nodeIndex(node.hostname);
    if (index !== undefined && node.id !== input.selfId) indices.add(index);
  }
  for (const index of [...indices].sort((a, b) => a - b)) {
    const layout = nodeLayout(index);
    const entry = swarmEntry(
      input.swarmNodes.filter((node) => node.id !== input.selfId),
      layout.name,
    );
    if (entry) used.add(entry.id);
    const link = input.host.links.find((candidate) => candidate.name === layout.hostLink);
    const hasNamespace = input.host.namespaces.includes(layout.namespace);
    views.push({
      ...(entry ? swarmFields(entry) : {
        name: layout.name,
        id: null,
        role: null,
        availability: null,
        state: "NotInSwarm",
        address: hasNamespace ? layout.address : null,
      }),
      index,
      namespace: hasNamespace ? layout.namespace : null,
      socket: hasNamespace ? layout.dockerHost : null,
      cut: link !== undefined && !link.up,
    });
  }
  for (const node of input.swarmNodes) {
    if (used.has(node.id)) continue;
    views.push({ ...swarmFields(node), index: null, namespace: null, socket: null });
  }
  return views;
}

function swarmFields(node: SwarmNode) {
  return {
    name: node.hostname,
    id: node.id,
    role: node.role,
    availability: node.availability,
    state: node.state,
    address: node.address || null,
    cut: false,
  };
}

/** Resolves a node name given to `cut`/`heal` to a node we made; usage errors say which exist. */
export function resolveCutTarget(name: string, nodes: readonly ClusterNodeView[]): number {
  const known = nodes.map((node) => node.name);
  const node = nodes.find((candidate) => candidate.name === name);
  if (!node) {
    throw new UsageError(
      `Unknown node "${name}"; the nodes are: ${known.length > 0 ? known.join(", ") : "(none)"}`,
    );
  }
  if (node.index === 1) {
    throw new UsageError(
      `Node "${name}" is the machine's own engine (node 1) and cannot be cut; cut one of: ${
        known.filter((entry) => entry !== name).join(", ") || "(no other node: run cluster up)"
      }`,
    );
  }
  if (node.index === null || node.namespace === null) {
    throw new UsageError(
      `Node "${name}" was not made by "cluster up" and has no link here; cut one of: ${
        nodes.filter((entry) => entry.namespace !== null).map((entry) => entry.name).join(", ") ||
        "(none)"
      }`,
    );
  }
  return node.index;
}
