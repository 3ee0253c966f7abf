/**
 * `cluster up|status|cut|heal|down`: a local multi-node Swarm on this one machine. The machine's
 * engine is node 1 (a manager); node i >= 2 is a `dockerd` in the network namespace `platform-<i>`,
 * joined as a worker. See the layout in `ops/plan/cluster.ts`.
 */
import type { Command } from "commander";
import * as host from "../adapters/netns.ts";
import * as nodeHost from "../adapters/node_host.ts";
import { defaultDockerHost, SwarmEngine, type SwarmInfo } from "../adapters/swarm_nodes.ts";
import { OpsError } from "../errors.ts";
import {
  CLUSTER_NETWORK,
  CLUSTER_PATHS,
  type ClusterNodeView,
  type ClusterStep,
  clusterView,
  describeStep,
  engineCommand,
  engineProcesses,
  fileIndex,
  FORWARD_RULES,
  HOST_ADDRESS,
  HOST_INTERFACE,
  type HostSnapshot,
  isLoopback,
  linkIndex,
  lockPath,
  mountsUnder,
  type NamespaceNetwork,
  nodeIndex,
  nodeIndices,
  nodeLayout,
  parseMountinfo,
  parseNodeCount,
  planDown,
  planJoin,
  planUp,
  processesOfNode,
  resolveCutTarget,
  SWARM_PORT,
  type SwarmNode,
} from "../plan/cluster.ts";
import { formatTable } from "../render/table.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { pollUntil } from "./_poll.ts";

/** How long a node's engine may take to answer after its start. */
const ENGINE_START_MS = 90_000;
/** How long a node's engine may take to stop after SIGTERM (it stops its containers first). */
const ENGINE_STOP_MS = 30_000;
/** How long a SIGKILLed process may take to disappear. */
const KILL_MS = 10_000;
const POLL_MS = 500;

/** Options of `cluster up`. */
export interface ClusterUpFlags {
  nodes?: string;
}

/** The machine's engine as a manager, checked to be one other nodes can join. */
interface Manager {
  engine: SwarmEngine;
  info: SwarmInfo;
  /** `host:port` workers join through. */
  joinAddress: string;
}

function requireRoot(verb: string): void {
  if (!host.isRoot()) {
    throw new OpsError(
      `"cluster ${verb}" needs root: it manages network namespaces, links, iptables rules and ` +
        `Docker engines (run it as root or with sudo)`,
      { code: "NOT_ROOT" },
    );
  }
}

async function machineInfo(engine: SwarmEngine): Promise<SwarmInfo> {
  const info = await engine.info();
  if (!info) {
    throw new OpsError(
      `Cannot reach the Docker engine at "${defaultDockerHost()}" (start it, or run "./platform deploy" to install and start it)`,
      { code: "DOCKER_UNREACHABLE" },
    );
  }
  return info;
}

/** The machine's engine as the manager: a Swarm is made when there is none. */
async function ensureManager(context: CommandContext): Promise<Manager> {
  const engine = new SwarmEngine();
  let info = await machineInfo(engine);
  if (info.swarmState === "inactive") {
    context.progress.log("the Docker engine is in no Swarm: docker swarm init");
    await engine.init();
    info = await machineInfo(engine);
  }
  if (info.swarmState !== "active") {
    throw new OpsError(
      `The Docker engine's Swarm is "${info.swarmState}"${info.error ? `: ${info.error}` : ""}`,
      { code: "SWARM_NOT_ACTIVE" },
    );
  }
  if (!info.isManager) {
    throw new OpsError(
      "The Docker engine is a worker of another Swarm; the cluster needs it to be a manager",
      { code: "NOT_MANAGER" },
    );
  }
  if (isLoopback(info.nodeAddress)) {
    throw new OpsError(
      `The Swarm advertises "${info.nodeAddress}", a loopback address the other nodes cannot reach; ` +
        `make the Swarm again on an address of this machine (docker swarm leave --force, then ` +
        `docker swarm init --advertise-addr <address>; this removes every stack)`,
      { code: "SWARM_LOOPBACK" },
    );
  }
  const own = info.managers.find((manager) => manager.id === info.nodeId)?.address;
  return { engine, info, joinAddress: own || `${info.nodeAddress}:${SWARM_PORT}` };
}

/** What the host shows of the cluster; `rules` reads iptables (root only). */
async function readHost(rules: boolean): Promise<HostSnapshot> {
  const links = await host.listLinks();
  const namespaces = await host.listNamespaces();
  const processes = await nodeHost.listProcesses();
  const engines = engineProcesses(processes);
  const inside = new Map<number, NamespaceNetwork>();
  const known = new Set<number>(engines.keys());
  for (const name of namespaces) {
    const index = nodeIndex(name);
    if (index === undefined) continue;
    known.add(index);
    const nsLinks = await host.listLinks(name);
    inside.set(index, {
      eth0: nsLinks.find((link) => link.name === "eth0"),
      loUp: nsLinks.find((link) => link.name === "lo")?.up ?? false,
      gateway: await host.defaultGateway(name),
    });
  }
  for (const link of links) {
    const index = linkIndex(link.name);
    if (index !== undefined) known.add(index);
  }
  const remains = new Set<number>();
  for (const dir of [CLUSTER_PATHS.dataDir, CLUSTER_PATHS.runDir, CLUSTER_PATHS.logDir]) {
    for (const name of await nodeHost.listDir(dir)) {
      const index = fileIndex(name);
      if (index !== undefined) remains.add(index);
    }
  }
  for (const index of [...known, ...remains]) {
    if (processesOfNode(processes, nodeLayout(index)).length > 0) remains.add(index);
  }
  return {
    hostInterface: links.find((link) => link.name === HOST_INTERFACE),
    blackhole: await host.hasBlackholeRoute(CLUSTER_NETWORK),
    forwardRules: rules ? await Promise.all(FORWARD_RULES.map(host.hasForwardRule)) : [],
    ipForward: await host.ipForwarding(),
    links,
    routes: await host.listRoutes(),
    namespaces,
    inside,
    engines,
    remains: [...remains].sort((a, b) => a - b),
  };
}

async function applyNetworkStep(step: ClusterStep): Promise<void> {
  switch (step.kind) {
    case "ip-forward":
      return await host.enableIpForwarding();
    case "host-interface": {
      const links = await host.listLinks();
      if (!links.some((link) => link.name === HOST_INTERFACE)) await host.addDummy(HOST_INTERFACE);
      await host.setAddress(HOST_INTERFACE, `${HOST_ADDRESS}/32`);
      return await host.setLinkUp(HOST_INTERFACE, true);
    }
    case "host-route":
      return await host.addBlackholeRoute(CLUSTER_NETWORK);
    case "remove-host-route":
      return await host.removeBlackholeRoute(CLUSTER_NETWORK);
    case "forward-rule":
      return await host.insertForwardRule(step.rule);
    case "namespace":
      return await host.addNamespace(nodeLayout(step.node).namespace);
    case "link": {
      const layout = nodeLayout(step.node);
      return await host.addVethPair(layout.hostLink, layout.namespace);
    }
    case "link-address": {
      const layout = nodeLayout(step.node);
      return await host.setAddress(layout.hostLink, `${layout.gateway}/${layout.prefixLength}`);
    }
    case "link-up":
      return await host.setLinkUp(nodeLayout(step.node).hostLink, true);
    case "link-route": {
      const layout = nodeLayout(step.node);
      return await host.setLinkRoute(layout.network, layout.hostLink, step.source);
    }
    case "namespace-network": {
      const layout = nodeLayout(step.node);
      await host.setLinkUp("lo", true, layout.namespace);
      await host.setAddress("eth0", `${layout.address}/${layout.prefixLength}`, layout.namespace);
      await host.setLinkUp("eth0", true, layout.namespace);
      return await host.setDefaultRoute(layout.namespace, layout.gateway);
    }
    case "remove-link":
      return await host.removeLink(nodeLayout(step.node).hostLink);
    case "remove-namespace":
      return await host.removeNamespace(nodeLayout(step.node).namespace);
    case "remove-host-interface":
      return await host.removeLink(HOST_INTERFACE);
    case "remove-forward-rule": {
      // Remove every copy: a rule inserted twice by hand would keep forwarding otherwise.
      while (await host.hasForwardRule(step.rule)) await host.deleteForwardRule(step.rule);
      return;
    }
    default:
      throw new Error(`Not a network step: ${step.kind}`);
  }
}

async function startEngine(index: number): Promise<void> {
  const layout = nodeLayout(index);
  await nodeHost.makeDirs(layout.dataRoot, layout.execRoot, CLUSTER_PATHS.logDir);
  // An empty config of its own: a daemon.json written for the machine's engine (hosts, data-root)
  // must not apply to the nodes.
  await nodeHost.writeText(layout.configFile, "{}\n");
  nodeHost.spawnDetached(engineCommand(layout));
}

const ENGINE_SPAWN_GRACE_MS = 3_000;

/** Waits until node `index`'s engine answers; fails early, with its log, when it has exited. */
async function waitForEngine(context: CommandContext, index: number): Promise<SwarmInfo> {
  const layout = nodeLayout(index);
  const engine = new SwarmEngine(layout.dockerHost);
  const started = context.now();
  try {
    return await pollUntil(context, {
      what: `the engine of ${layout.name} to answer`,
      timeoutMs: ENGINE_START_MS,
      intervalMs: POLL_MS,
    }, async () => {
      const info = await engine.info(AbortSignal.timeout(10_000));
      if (info) return { done: true, value: info };
      // Just spawned, the engine is still `nsenter`/`unshare`/`sh` on its way to `exec dockerd`:
      // only a missing process a while after the start means it exited.
      const settled = context.now() - started > ENGINE_SPAWN_GRACE_MS;
      if (settled && !engineProcesses(await nodeHost.listProcesses()).has(index)) {
        throw new OpsError(`The engine of ${layout.name} exited`, { code: "ENGINE_EXITED" });
      }
      return { done: false, detail: `no answer on ${layout.dockerHost}` };
    });
  } catch (error) {
    const log = (await nodeHost.readTail(layout.logFile, 2000)).trim().split("\n").slice(-5)
      .join("\n  ");
    throw new OpsError(
      `${(error as Error).message}; the last lines of ${layout.logFile}:\n  ${log || "(empty)"}`,
      { code: (error as OpsError).code ?? "ENGINE_FAILED", cause: error },
    );
  }
}

/** Joins node `index` to the manager's Swarm unless it is a member already; returns what it did. */
async function joinNode(
  context: CommandContext,
  manager: Manager,
  index: number,
  token: () => Promise<string>,
): Promise<string[]> {
  const layout = nodeLayout(index);
  const engine = new SwarmEngine(layout.dockerHost);
  const info = await waitForEngine(context, index);
  const plan = planJoin(layout.name, info, {
    managerId: manager.info.nodeId,
    nodes: await manager.engine.nodes(),
  });
  const done: string[] = [];
  if (plan.leave) {
    context.progress.log(`${layout.name}: leave its old Swarm (${info.swarmState})`);
    await engine.leave();
    done.push(`${layout.name}: left its old Swarm`);
  }
  for (const id of plan.removeStale) {
    context.progress.log(`${layout.name}: remove its stale Swarm entry ${id}`);
    await manager.engine.removeNode(id);
    done.push(`${layout.name}: removed stale Swarm entry ${id}`);
  }
  if (plan.join) {
    context.progress.log(`${layout.name}: join the Swarm at ${manager.joinAddress} as a worker`);
    await engine.join(await token(), manager.joinAddress);
    done.push(`${layout.name}: joined the Swarm`);
  }
  return done;
}

async function readView(manager: SwarmEngine, info: SwarmInfo): Promise<ClusterNodeView[]> {
  const snapshot = await readHostLinks();
  const swarmNodes = info.isManager ? await manager.nodes() : [];
  return clusterView({
    selfId: info.nodeId,
    selfSocket: defaultDockerHost(),
    swarmNodes,
    host: snapshot,
  });
}

async function readHostLinks(): Promise<Pick<HostSnapshot, "links" | "namespaces">> {
  return { links: await host.listLinks(), namespaces: await host.listNamespaces() };
}

function formatNodes(nodes: readonly ClusterNodeView[]): string {
  if (nodes.length === 0) return "no nodes: the Docker engine is in no Swarm";
  return formatTable(
    ["NAME", "ROLE", "AVAILABILITY", "STATE", "ADDRESS", "NAMESPACE", "SOCKET", "LINK"],
    nodes.map((node) => [
      node.name,
      node.role ?? "-",
      node.availability ?? "-",
      node.state,
      node.address ?? "-",
      node.namespace ?? "-",
      node.socket ?? "-",
      node.namespace === null ? "-" : node.cut ? "cut" : "up",
    ]),
  );
}

function elapsed(context: CommandContext, started: number): number {
  return Math.round((context.now() - started) / 100) / 10;
}

/** Waits until every node in `names` is Ready in the manager's list; returns the final view. */
async function waitForReady(
  context: CommandContext,
  manager: Pick<Manager, "engine" | "info">,
  names: readonly string[],
): Promise<ClusterNodeView[]> {
  const view = await pollUntil(context, {
    what: `${names.join(", ")} to be Ready`,
    timeoutMs: context.config.timeoutSeconds * 1000,
    intervalMs: POLL_MS,
    onWait: (detail) => context.progress.update(detail),
  }, async () => {
    const view = await readView(manager.engine, manager.info);
    const waiting = names.filter((name) =>
      view.find((node) => node.name === name)?.state !== "Ready"
    );
    if (waiting.length === 0) return { done: true, value: view };
    return {
      done: false,
      detail: `waiting for ${
        waiting.map((name) =>
          `${name} (${view.find((node) => node.name === name)?.state ?? "absent"})`
        )
          .join(", ")
      } to be Ready`,
    };
  });
  context.progress.done();
  return view;
}

/** Runs `body` holding the cluster's lock, waiting while another `cluster` command holds it. */
async function locked<T>(body: () => Promise<T>): Promise<T> {
  const lock = await nodeHost.lockFile(lockPath());
  try {
    return await body();
  } finally {
    lock.release();
  }
}

/** Runs `cluster up`. */
export async function clusterUp(context: CommandContext, flags: ClusterUpFlags): Promise<void> {
  const count = parseNodeCount(flags.nodes);
  requireRoot("up");
  await locked(() => up(context, count));
}

async function up(context: CommandContext, count: number): Promise<void> {
  const started = context.now();
  const manager = await ensureManager(context);
  const changes: string[] = [];
  const steps = planUp(count, await readHost(true), { source: manager.info.nodeAddress });
  for (const step of steps) {
    const line = describeStep(step);
    context.progress.log(line);
    changes.push(line);
    if (step.kind !== "start-engine") await applyNetworkStep(step);
  }
  for (const step of steps) {
    if (step.kind === "start-engine") await startEngine(step.node);
  }
  let token: Promise<string> | undefined;
  const getToken = () => token ??= manager.engine.workerToken();
  const joined = await Promise.all(
    nodeIndices(count).map((index) => joinNode(context, manager, index, getToken)),
  );
  changes.push(...joined.flat());
  const selfName = (await manager.engine.nodes()).find((node) => node.id === manager.info.nodeId)
    ?.hostname ?? nodeHost.hostname();
  const names = [selfName, ...nodeIndices(count).map((index) => nodeLayout(index).name)];
  const nodes = await waitForReady(context, manager, names);
  const seconds = elapsed(context, started);
  context.result(
    { nodes, changes, seconds },
    `${formatNodes(nodes)}\n${
      changes.length === 0 ? "nothing to change: " : ""
    }${nodes.length} nodes, ${names.length} asked for, ready in ${seconds.toFixed(1)}s`,
  );
}

/** Runs `cluster status`. */
export async function clusterStatus(context: CommandContext): Promise<void> {
  const engine = new SwarmEngine();
  const info = await machineInfo(engine);
  const nodes = await readView(engine, info);
  context.result({ nodes }, formatNodes(nodes));
}

async function cutTarget(name: string, verb: string) {
  const engine = new SwarmEngine();
  const info = await machineInfo(engine);
  const nodes = await readView(engine, info);
  const index = resolveCutTarget(name, nodes);
  requireRoot(verb);
  const link = (await host.listLinks()).find((entry) => entry.name === nodeLayout(index).hostLink);
  if (!link) {
    throw new OpsError(
      `Node "${name}" has no link ${nodeLayout(index).hostLink}: run "cluster up" to make it again`,
      { code: "NO_LINK" },
    );
  }
  return { engine, info, index, link };
}

/** Runs `cluster cut <node>`: the node's link goes down; its tasks run on, unreachable. */
export async function clusterCut(context: CommandContext, name: string): Promise<void> {
  await cutTarget(name, "cut");
  await locked(() => cut(context, name));
}

async function cut(context: CommandContext, name: string): Promise<void> {
  const { index, link } = await cutTarget(name, "cut");
  const layout = nodeLayout(index);
  if (link.up) {
    context.progress.log(`ip link set ${layout.hostLink} down`);
    await host.setLinkUp(layout.hostLink, false);
  }
  context.result(
    { node: layout.name, link: layout.hostLink, cut: true, changed: link.up },
    link.up ? `cut ${layout.name} (${layout.hostLink} down)` : `${layout.name} was already cut`,
  );
}

/** Runs `cluster heal <node>`: the link comes back; waits until the manager sees the node Ready. */
export async function clusterHeal(context: CommandContext, name: string): Promise<void> {
  await cutTarget(name, "heal");
  await locked(() => heal(context, name));
}

async function heal(context: CommandContext, name: string): Promise<void> {
  const started = context.now();
  const { engine, info, index, link } = await cutTarget(name, "heal");
  const layout = nodeLayout(index);
  if (!link.up) context.progress.log(`ip link set ${layout.hostLink} up`);
  // Bringing the link up restores the kernel's route, from the wrong source (see routesFrom): the
  // route from the manager's address is made again, and so are the address and the node's own
  // network, in case something else took them while it was down.
  await applyNetworkStep({ kind: "link-address", node: index });
  await applyNetworkStep({ kind: "link-up", node: index });
  await applyNetworkStep({ kind: "link-route", node: index, source: info.nodeAddress });
  await applyNetworkStep({ kind: "namespace-network", node: index });
  const nodes = await waitForReady(context, { engine, info }, [layout.name]);
  const seconds = elapsed(context, started);
  context.result(
    { node: layout.name, link: layout.hostLink, cut: false, changed: !link.up, nodes, seconds },
    `${link.up ? `${layout.name} was not cut` : `healed ${layout.name}`}; Ready after ${
      seconds.toFixed(1)
    }s`,
  );
}

/** SIGTERM, then SIGKILL after {@linkcode ENGINE_STOP_MS}; waits until the process is gone. */
async function stopProcess(context: CommandContext, pid: number, what: string): Promise<void> {
  if (!nodeHost.sendSignal(pid, "SIGTERM")) return;
  try {
    await pollUntil(
      context,
      { what, timeoutMs: ENGINE_STOP_MS, intervalMs: POLL_MS },
      async () =>
        (await nodeHost.processExists(pid))
          ? { done: false, detail: `pid ${pid} still runs` }
          : { done: true, value: undefined },
    );
  } catch {
    context.progress.log(
      `${what}: no exit after SIGTERM within ${ENGINE_STOP_MS / 1000}s, SIGKILL`,
    );
    nodeHost.sendSignal(pid, "SIGKILL");
    await pollUntil(
      context,
      { what, timeoutMs: KILL_MS, intervalMs: POLL_MS },
      async () =>
        (await nodeHost.processExists(pid))
          ? { done: false, detail: `pid ${pid} still runs after SIGKILL` }
          : { done: true, value: undefined },
    );
  }
}

/** Kills what is left of node `index` (containerd, shims, containers), unmounts and removes its files. */
async function cleanNode(context: CommandContext, index: number): Promise<void> {
  const layout = nodeLayout(index);
  const left = processesOfNode(await nodeHost.listProcesses(), layout);
  for (const pid of left) nodeHost.sendSignal(pid, "SIGKILL");
  if (left.length > 0) {
    context.progress.log(`${layout.name}: killed ${left.length} leftover processes`);
    await pollUntil(context, {
      what: `the leftover processes of ${layout.name} to end`,
      timeoutMs: KILL_MS,
      intervalMs: POLL_MS,
    }, async () => {
      const still = [];
      for (const pid of left) if (await nodeHost.processExists(pid)) still.push(pid);
      return still.length === 0
        ? { done: true, value: undefined }
        : { done: false, detail: `pids ${still.join(", ")}` };
    });
  }
  const mounts = mountsUnder(parseMountinfo(await nodeHost.readMountinfo()), [
    layout.dataRoot,
    layout.execRoot,
  ]);
  const stuck: string[] = [];
  for (const mount of mounts) if (!await nodeHost.unmount(mount)) stuck.push(mount);
  if (mounts.length > 0) {
    context.progress.log(`${layout.name}: unmounted ${mounts.length - stuck.length} mounts`);
  }
  if (stuck.length > 0) {
    throw new OpsError(
      `Cannot unmount ${stuck.map((path) => `"${path}"`).join(", ")}; its files stay`,
      { code: "UNMOUNT_FAILED" },
    );
  }
  await nodeHost.removeCgroups(layout.cgroupParent);
  for (
    const path of [
      layout.dataRoot,
      layout.execRoot,
      layout.socketPath,
      layout.pidFile,
      layout.configFile,
      layout.logFile,
    ]
  ) {
    await nodeHost.removePath(path);
  }
}

/** Runs `cluster down`: removes every node `up` made; the machine's engine stays as it was. */
export async function clusterDown(context: CommandContext): Promise<void> {
  requireRoot("down");
  await locked(() => down(context));
}

async function down(context: CommandContext): Promise<void> {
  const started = context.now();
  const engine = new SwarmEngine();
  const info = await engine.info();
  let swarmNodes: SwarmNode[] = [];
  if (info?.isManager) {
    swarmNodes = await engine.nodes();
  } else {
    context.progress.log(
      info
        ? "the Docker engine is no Swarm manager: no Swarm entries to remove"
        : "the Docker engine does not answer: no Swarm entries to remove",
    );
  }
  const steps = planDown(await readHost(true), swarmNodes);
  const changes: string[] = [];
  const log = (step: ClusterStep) => {
    const line = describeStep(step);
    context.progress.log(line);
    changes.push(line);
  };
  // Engines stop together: each waits for its own containers to stop.
  const stops = steps.filter((step) => step.kind === "stop-engine");
  stops.forEach(log);
  await Promise.all(
    stops.map((step) =>
      stopProcess(context, step.pid, `the engine of ${nodeLayout(step.node).name} to stop`)
    ),
  );
  for (const step of steps) {
    if (step.kind === "stop-engine") continue;
    log(step);
    if (step.kind === "remove-swarm-node") await engine.removeNode(step.id);
    else if (step.kind === "clean-node") await cleanNode(context, step.node);
    else await applyNetworkStep(step);
  }
  for (const dir of [CLUSTER_PATHS.dataDir, CLUSTER_PATHS.runDir, CLUSTER_PATHS.logDir]) {
    await nodeHost.removeEmptyDir(dir);
  }
  const removed = [
    ...new Set(steps.filter((step) => "node" in step).map((step) => `platform-${step.node}`)),
  ];
  const seconds = elapsed(context, started);
  context.result(
    { removed, changes, seconds },
    removed.length === 0 && changes.length === 0
      ? "nothing to remove: no cluster node is left"
      : `removed ${removed.length > 0 ? removed.join(", ") : "the host's cluster network"} in ${
        seconds.toFixed(1)
      }s`,
  );
}

/** Registers `cluster` and its commands. */
export function registerCluster(program: Command, run: CommandRunner): void {
  const cluster = program.command("cluster")
    .description("a local multi-node Swarm on this machine: up, status, cut, heal, down");
  cluster.command("up")
    .description("make (or complete) a Swarm of N nodes; node 1 is this machine's engine")
    .option("--nodes <n>", "how many nodes, this machine's engine included (default 3)")
    .action((flags: ClusterUpFlags) => run((context) => clusterUp(context, flags)));
  cluster.command("status")
    .description("each node: role, availability, state, address, namespace, engine socket, link")
    .action(() => run((context) => clusterStatus(context)));
  cluster.command("cut")
    .description("a hard network loss of one node: its link goes down, its tasks run on")
    .argument("<node>", "a node's Swarm hostname (platform-2, ...)")
    .action((name: string) => run((context) => clusterCut(context, name)));
  cluster.command("heal")
    .description("bring a cut node's link back and wait until the manager sees it Ready")
    .argument("<node>", "a node's Swarm hostname (platform-2, ...)")
    .action((name: string) => run((context) => clusterHeal(context, name)));
  cluster.command("down")
    .description("remove every node, namespace, link and data directory that up made")
    .action(() => run((context) => clusterDown(context)));
}
