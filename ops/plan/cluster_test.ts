import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import {
  type ClusterNodeView,
  clusterView,
  engineCommand,
  engineProcesses,
  fileIndex,
  FORWARD_RULES,
  type HostSnapshot,
  linkIndex,
  type LinkState,
  mountsUnder,
  type NamespaceNetwork,
  nodeIndex,
  nodeLayout,
  parseBlackhole,
  parseCgroupPaths,
  parseDefaultGateway,
  parseIpLinks,
  parseMountinfo,
  parseNetnsList,
  parseNodeCount,
  parseRoutes,
  parseSwarmNodes,
  planDown,
  planJoin,
  planUp,
  type ProcessEntry,
  processesOfNode,
  resolveCutTarget,
  routesFrom,
  type SwarmNode,
} from "./cluster.ts";

function isUsage(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.equal(error.exitCode, 2);
    assert.match(error.message, pattern);
    return true;
  };
}

function link(name: string, up: boolean, ...addresses: string[]): LinkState {
  return { name, up, addresses };
}

function wholeNode(index: number): NamespaceNetwork {
  return {
    eth0: link("eth0", true, `10.213.${index}.2/24`),
    loUp: true,
    gateway: `10.213.${index}.1`,
  };
}

/** The manager's advertised address. */
const SOURCE = "192.0.2.2";
const OPTIONS = { source: SOURCE };

/** What `up` does for a node that does not exist yet, in order. */
function newNodeSteps(node: number) {
  return [
    { kind: "namespace", node },
    { kind: "link", node },
    { kind: "link-address", node },
    { kind: "link-up", node },
    { kind: "link-route", node, source: SOURCE },
    { kind: "namespace-network", node },
    { kind: "start-engine", node },
  ];
}

const EMPTY_HOST: HostSnapshot = {
  hostInterface: undefined,
  blackhole: false,
  forwardRules: [false, false],
  ipForward: true,
  links: [link("lo", true, "127.0.0.1/8"), link("eth0", true, "192.0.2.2/24")],
  routes: [{ dst: "default", dev: "eth0", source: undefined }],
  namespaces: [],
  inside: new Map(),
  engines: new Map(),
  remains: [],
};

/** A host where `up --nodes 3` has run. */
function fullHost(): HostSnapshot {
  return {
    hostInterface: link("pf-host", true, "10.213.0.1/32"),
    blackhole: true,
    forwardRules: [true, true],
    ipForward: true,
    links: [
      ...EMPTY_HOST.links,
      link("pf-host", true, "10.213.0.1/32"),
      link("pf-2", true, "10.213.2.1/24"),
      link("pf-3", true, "10.213.3.1/24"),
    ],
    routes: [
      { dst: "default", dev: "eth0", source: undefined },
      { dst: "10.213.2.0/24", dev: "pf-2", source: SOURCE },
      { dst: "10.213.3.0/24", dev: "pf-3", source: SOURCE },
    ],
    namespaces: ["platform-3", "platform-2", "other"],
    inside: new Map([[2, wholeNode(2)], [3, wholeNode(3)]]),
    engines: new Map([[2, 1002], [3, 1003]]),
    remains: [2, 3],
  };
}

function swarmNode(hostname: string, id: string, overrides: Partial<SwarmNode> = {}): SwarmNode {
  return {
    id,
    hostname,
    role: "worker",
    availability: "Active",
    state: "Ready",
    address: "",
    managerStatus: undefined,
    ...overrides,
  };
}

const MANAGER = swarmNode("vm", "m1", {
  role: "manager",
  address: "192.0.2.2",
  managerStatus: "Leader",
});

Deno.test("nodeLayout() derives names, addresses and paths from the node's number", () => {
  const layout = nodeLayout(3);
  assert.equal(layout.name, "platform-3");
  assert.equal(layout.namespace, "platform-3");
  assert.equal(layout.namespacePath, "/var/run/netns/platform-3");
  assert.equal(layout.hostLink, "pf-3");
  assert.equal(layout.network, "10.213.3.0/24");
  assert.equal(layout.gateway, "10.213.3.1");
  assert.equal(layout.address, "10.213.3.2");
  assert.equal(layout.dockerHost, "unix:///run/platform-cluster/platform-3.sock");
  assert.equal(layout.dataRoot, "/var/lib/platform-cluster/platform-3");
  assert.equal(layout.execRoot, "/run/platform-cluster/platform-3");
  assert.equal(layout.pidFile, "/run/platform-cluster/platform-3.pid");
  assert.equal(layout.logFile, "/var/log/platform-cluster/platform-3.log");
  assert.throws(() => nodeLayout(1), RangeError);
  assert.throws(() => nodeLayout(255), RangeError);
});

Deno.test("nodeIndex(), linkIndex() and fileIndex() know only the names the cluster makes", async (t) => {
  const cases: [string, number | undefined][] = [
    ["platform-2", 2],
    ["platform-254", 254],
    ["platform-1", undefined],
    ["platform-02", undefined],
    ["platform-255", undefined],
    ["platform-2x", undefined],
    ["vm", undefined],
  ];
  for (const [name, index] of cases) {
    await t.step(name, () => assert.equal(nodeIndex(name), index));
  }
  assert.equal(linkIndex("pf-7"), 7);
  assert.equal(linkIndex("pf-host"), undefined);
  assert.equal(linkIndex("pf-1"), undefined);
  assert.equal(fileIndex("platform-4.sock"), 4);
  assert.equal(fileIndex("platform-4.pid"), 4);
  assert.equal(fileIndex("platform-4"), 4);
  assert.equal(fileIndex("platform-4.tmp"), undefined);
});

Deno.test("parseNodeCount() defaults to 3 and accepts 1..16", async (t) => {
  assert.equal(parseNodeCount(undefined), 3);
  assert.equal(parseNodeCount("1"), 1);
  assert.equal(parseNodeCount(" 16 "), 16);
  for (const bad of ["0", "-1", "x", "1.5", "", "17", "2e1"]) {
    await t.step(`"${bad}" is a usage error`, () => {
      assert.throws(() => parseNodeCount(bad), isUsage(/Invalid node count/));
    });
  }
});

Deno.test("engineCommand() starts dockerd in the node's network and UTS namespaces, detached", () => {
  const argv = engineCommand(nodeLayout(2));
  assert.deepEqual(argv.slice(0, 7), [
    "setsid",
    "nsenter",
    "--net=/var/run/netns/platform-2",
    "unshare",
    "--uts",
    "sh",
    "-c",
  ]);
  const script = argv[7];
  assert.match(script, /^hostname platform-2 && exec dockerd /);
  for (
    const part of [
      "--data-root /var/lib/platform-cluster/platform-2",
      "--exec-root /run/platform-cluster/platform-2",
      "-H unix:///run/platform-cluster/platform-2.sock",
      "--pidfile /run/platform-cluster/platform-2.pid",
      "--insecure-registry 10.213.0.1:5000",
      "--config-file /run/platform-cluster/platform-2.json",
      "--cgroup-parent /platform-cluster/platform-2",
    ]
  ) {
    assert.ok(script.includes(part), part);
  }
  assert.match(script, />>\/var\/log\/platform-cluster\/platform-2\.log 2>&1 <\/dev\/null$/);
});

Deno.test("parseIpLinks() reads `ip -j addr show`, keeping IPv4 addresses and the UP flag", () => {
  const json = JSON.stringify([
    {
      ifname: "pf-2",
      flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
      addr_info: [
        { family: "inet", local: "10.213.2.1", prefixlen: 24 },
        { family: "inet6", local: "fe80::1", prefixlen: 64 },
      ],
    },
    { ifname: "pf-3", flags: ["BROADCAST", "MULTICAST"] },
    { flags: ["UP"] },
    "garbage",
  ]);
  assert.deepEqual(parseIpLinks(json), [
    link("pf-2", true, "10.213.2.1/24"),
    link("pf-3", false),
  ]);
  assert.deepEqual(parseIpLinks(""), []);
  assert.throws(() => parseIpLinks("not json"), /Cannot parse the output of "ip -j"/);
});

Deno.test("parseDefaultGateway(), parseBlackhole() and parseNetnsList() read ip's output", () => {
  assert.equal(
    parseBlackhole('[{"type":"blackhole","dst":"10.213.0.0/16","flags":[]}]', "10.213.0.0/16"),
    true,
  );
  assert.equal(parseBlackhole('[{"dst":"10.213.0.0/16","dev":"eth0"}]', "10.213.0.0/16"), false);
  assert.equal(parseBlackhole("[]", "10.213.0.0/16"), false);
  assert.equal(
    parseDefaultGateway('[{"dst":"default","gateway":"10.213.2.1","dev":"eth0","flags":[]}]'),
    "10.213.2.1",
  );
  assert.equal(parseDefaultGateway("[]"), undefined);
  assert.equal(parseDefaultGateway("oops"), undefined);
  assert.deepEqual(parseNetnsList("platform-3 (id: 1)\nplatform-2 (id: 0)\nplain\n\n"), [
    "platform-3",
    "platform-2",
    "plain",
  ]);
});

Deno.test("parseSwarmNodes() reads `docker node inspect`, a manager's address from its manager status", () => {
  const json = JSON.stringify([
    {
      ID: "m1",
      Spec: { Role: "manager", Availability: "active" },
      Description: { Hostname: "vm" },
      Status: { State: "ready", Addr: "0.0.0.0" },
      ManagerStatus: { Leader: true, Reachability: "reachable", Addr: "192.0.2.2:2377" },
    },
    {
      ID: "w2",
      Spec: { Role: "worker", Availability: "drain" },
      Description: { Hostname: "platform-2" },
      Status: { State: "down", Addr: "10.213.2.2" },
    },
    { Spec: {} },
  ]);
  assert.deepEqual(parseSwarmNodes(json), [
    { ...MANAGER, managerStatus: "Leader" },
    swarmNode("platform-2", "w2", {
      availability: "Drain",
      state: "Down",
      address: "10.213.2.2",
    }),
  ]);
});

Deno.test("planUp() makes the host's interface, rules, and each node's namespace, link and engine", () => {
  const steps = planUp(3, { ...EMPTY_HOST, ipForward: false }, OPTIONS);
  assert.deepEqual(steps, [
    { kind: "ip-forward" },
    { kind: "host-interface" },
    { kind: "host-route" },
    { kind: "forward-rule", rule: FORWARD_RULES[0] },
    { kind: "forward-rule", rule: FORWARD_RULES[1] },
    ...newNodeSteps(2),
    ...newNodeSteps(3),
  ]);
});

Deno.test("planUp() changes nothing on a whole cluster, and nothing for one node", () => {
  assert.deepEqual(planUp(3, fullHost(), OPTIONS), []);
  assert.deepEqual(planUp(2, fullHost(), OPTIONS), [], "node 3 stays: only down removes nodes");
  assert.deepEqual(planUp(1, EMPTY_HOST, OPTIONS), []);
});

Deno.test("planUp() adds only the new node after a smaller up", () => {
  assert.deepEqual(planUp(4, fullHost(), OPTIONS), [
    ...newNodeSteps(4),
  ]);
});

Deno.test("planUp() repairs what is missing: a cut link, a lost route, a stopped engine, a half-made pair", () => {
  const host = fullHost();
  host.links = host.links.map((entry) => entry.name === "pf-2" ? { ...entry, up: false } : entry);
  host.inside.set(3, { ...wholeNode(3), gateway: undefined });
  host.engines.delete(3);
  assert.deepEqual(planUp(3, host, OPTIONS), [
    { kind: "link-up", node: 2 },
    { kind: "link-route", node: 2, source: SOURCE },
    { kind: "namespace-network", node: 3 },
    { kind: "start-engine", node: 3 },
  ]);

  const half = fullHost();
  half.namespaces = half.namespaces.filter((name) => name !== "platform-3");
  half.inside.delete(3);
  assert.deepEqual(planUp(3, half, OPTIONS), [
    { kind: "remove-link", node: 3 },
    { kind: "namespace", node: 3 },
    { kind: "link", node: 3 },
    { kind: "link-address", node: 3 },
    { kind: "link-up", node: 3 },
    { kind: "link-route", node: 3, source: SOURCE },
    { kind: "namespace-network", node: 3 },
  ]);
});

Deno.test("planUp() routes to a node from the manager's address, not the kernel's pick", () => {
  const host = fullHost();
  host.routes = host.routes.map((route) =>
    route.dev === "pf-3" ? { ...route, source: "10.213.3.1" } : route
  );
  assert.deepEqual(planUp(3, host, OPTIONS), [{ kind: "link-route", node: 3, source: SOURCE }]);
  assert.equal(routesFrom(fullHost().routes, nodeLayout(2), SOURCE), true);
  assert.equal(routesFrom(fullHost().routes, nodeLayout(2), "10.213.2.1"), false);
});

Deno.test("parseRoutes() reads `ip -j route show`", () => {
  const json = JSON.stringify([
    { dst: "default", gateway: "192.0.2.1", dev: "eth0", flags: [] },
    { type: "blackhole", dst: "10.213.0.0/16", flags: [] },
    { dst: "10.213.2.0/24", dev: "pf-2", protocol: "kernel", scope: "link", prefsrc: "10.213.2.1" },
    { dev: "nowhere" },
  ]);
  assert.deepEqual(parseRoutes(json), [
    { dst: "default", dev: "eth0", source: undefined },
    { dst: "10.213.0.0/16", dev: undefined, source: undefined },
    { dst: "10.213.2.0/24", dev: "pf-2", source: "10.213.2.1" },
  ]);
  assert.throws(() => parseRoutes("{"), /Cannot parse the output of "ip -j route"/);
});

Deno.test("planJoin() joins new engines, leaves members alone and cleans stale entries", async (t) => {
  const manager = { managerId: "m1", nodes: [MANAGER] };
  await t.step("an engine in no Swarm joins", () => {
    assert.deepEqual(
      planJoin("platform-2", { swarmState: "inactive", nodeId: "", managerIds: [] }, manager),
      { leave: false, removeStale: [], join: true },
    );
  });
  await t.step("a member changes nothing", () => {
    assert.deepEqual(
      planJoin(
        "platform-2",
        { swarmState: "active", nodeId: "w2", managerIds: ["m1"] },
        { managerId: "m1", nodes: [MANAGER, swarmNode("platform-2", "w2")] },
      ),
      { leave: false, removeStale: [], join: false },
    );
  });
  await t.step("a member with an old Down entry of the same name removes that entry", () => {
    assert.deepEqual(
      planJoin(
        "platform-2",
        { swarmState: "active", nodeId: "w2", managerIds: ["m1"] },
        {
          managerId: "m1",
          nodes: [
            MANAGER,
            swarmNode("platform-2", "old", { state: "Down" }),
            swarmNode("platform-2", "w2"),
          ],
        },
      ),
      { leave: false, removeStale: ["old"], join: false },
    );
  });
  await t.step("an engine of an older Swarm leaves it, its entry goes, and it joins", () => {
    assert.deepEqual(
      planJoin(
        "platform-2",
        { swarmState: "active", nodeId: "w2", managerIds: ["gone"] },
        { managerId: "m1", nodes: [MANAGER, swarmNode("platform-2", "w2", { state: "Down" })] },
      ),
      { leave: true, removeStale: ["w2"], join: true },
    );
  });
  await t.step("an engine the manager removed leaves and joins again", () => {
    assert.deepEqual(
      planJoin("platform-2", { swarmState: "active", nodeId: "w2", managerIds: ["m1"] }, manager),
      { leave: true, removeStale: [], join: true },
    );
  });
});

Deno.test("planDown() stops engines first, then removes Swarm entries, leftovers, links, namespaces and host rules", () => {
  const steps = planDown(fullHost(), [
    MANAGER,
    swarmNode("platform-2", "w2"),
    swarmNode("platform-3", "w3", { state: "Down" }),
    swarmNode("elsewhere", "x9"),
  ]);
  assert.deepEqual(steps, [
    { kind: "stop-engine", node: 2, pid: 1002 },
    { kind: "stop-engine", node: 3, pid: 1003 },
    { kind: "remove-swarm-node", node: 2, id: "w2" },
    { kind: "remove-swarm-node", node: 3, id: "w3" },
    { kind: "clean-node", node: 2 },
    { kind: "remove-link", node: 2 },
    { kind: "remove-namespace", node: 2 },
    { kind: "clean-node", node: 3 },
    { kind: "remove-link", node: 3 },
    { kind: "remove-namespace", node: 3 },
    { kind: "remove-host-interface" },
    { kind: "remove-host-route" },
    { kind: "remove-forward-rule", rule: FORWARD_RULES[0] },
    { kind: "remove-forward-rule", rule: FORWARD_RULES[1] },
  ]);
});

Deno.test("planDown() has nothing to do on a clean host, and never removes a manager", () => {
  assert.deepEqual(planDown(EMPTY_HOST, [MANAGER]), []);
  assert.deepEqual(
    planDown(EMPTY_HOST, [MANAGER, swarmNode("platform-2", "m2", { role: "manager" })]),
    [],
  );
});

Deno.test("planDown() finds nodes by what they left: files, a Swarm entry, a stray link", () => {
  assert.deepEqual(
    planDown({ ...EMPTY_HOST, remains: [5], links: [link("pf-6", false)] }, [
      MANAGER,
      swarmNode("platform-7", "w7", { state: "Down" }),
    ]),
    [
      { kind: "remove-swarm-node", node: 7, id: "w7" },
      { kind: "clean-node", node: 5 },
      { kind: "remove-link", node: 6 },
    ],
  );
});

Deno.test("mountsUnder() lists a node's mounts deepest first and no other node's", () => {
  const mountinfo = [
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
    "300 22 0:50 / /var/lib/platform-cluster/platform-2/overlay2/abc/merged rw shared:2 - overlay overlay rw",
    "301 22 0:4 net:[4026532] /run/platform-cluster/platform-2/netns/1a2b rw shared:3 - nsfs nsfs rw",
    "302 22 0:51 / /var/lib/platform-cluster/platform-20/overlay2/def/merged rw - overlay overlay rw",
    "303 300 0:52 / /var/lib/platform-cluster/platform-2/overlay2/abc/merged/dev\\040shm rw - tmpfs shm rw",
    "304 22 0:53 / /var/lib/platform-cluster/platform-2 rw - ext4 /dev/vda rw",
  ].join("\n");
  const mounts = parseMountinfo(mountinfo);
  assert.equal(
    mounts[4].mountPoint,
    "/var/lib/platform-cluster/platform-2/overlay2/abc/merged/dev shm",
  );
  const layout = nodeLayout(2);
  assert.deepEqual(mountsUnder(mounts, [layout.dataRoot, layout.execRoot]), [
    "/var/lib/platform-cluster/platform-2/overlay2/abc/merged/dev shm",
    "/var/lib/platform-cluster/platform-2/overlay2/abc/merged",
    "/run/platform-cluster/platform-2/netns/1a2b",
    "/var/lib/platform-cluster/platform-2",
  ]);
});

const PROCESSES: ProcessEntry[] = [
  { pid: 1, args: ["/sbin/init"], cgroups: ["/"] },
  { pid: 100, args: ["dockerd"], cgroups: ["/"] },
  {
    pid: 1002,
    args: [
      "dockerd",
      "--config-file",
      "/run/platform-cluster/platform-2.json",
      "--pidfile",
      "/run/platform-cluster/platform-2.pid",
    ],
    cgroups: ["/"],
  },
  {
    pid: 1020,
    args: ["/usr/bin/dockerd", "--pidfile", "/run/platform-cluster/platform-20.pid"],
    cgroups: ["/"],
  },
  {
    pid: 1003,
    args: ["containerd", "--config", "/run/platform-cluster/platform-2/containerd/containerd.toml"],
    cgroups: ["/"],
  },
  {
    pid: 1004,
    args: [
      "/usr/bin/containerd-shim-runc-v2",
      "-namespace",
      "moby",
      "-address",
      "/run/platform-cluster/platform-2/containerd/containerd.sock",
    ],
    cgroups: ["/"],
  },
  {
    pid: 1005,
    args: ["deno", "run", "main.ts"],
    cgroups: parseCgroupPaths(
      "12:memory:/platform-cluster/platform-2/abcdef\n1:name=systemd:/platform-cluster/platform-2/abcdef\n",
    ),
  },
  {
    pid: 1006,
    args: ["deno", "run", "main.ts"],
    cgroups: ["/platform-cluster/platform-20/123", "/docker/456"],
  },
  {
    pid: 1007,
    args: ["containerd-shim-runc-v2", "-address=/run/platform-cluster/platform-20/c.sock"],
    cgroups: ["/"],
  },
];

Deno.test("processesOfNode() finds a node's engine, containerd, shims and containers, not another node's", () => {
  assert.deepEqual(processesOfNode(PROCESSES, nodeLayout(2)), [1002, 1003, 1004, 1005]);
  assert.deepEqual(processesOfNode(PROCESSES, nodeLayout(20)), [1020, 1006, 1007]);
});

Deno.test("engineProcesses() finds each node's dockerd by its pid file", () => {
  assert.deepEqual([...engineProcesses(PROCESSES)], [[2, 1002], [20, 1020]]);
});

Deno.test("clusterView() lists the machine's engine, the nodes made here, then any other node", () => {
  const host = {
    links: [link("pf-2", false, "10.213.2.1/24"), link("pf-3", true, "10.213.3.1/24")],
    namespaces: ["platform-3", "platform-2"],
  };
  const view = clusterView({
    selfId: "m1",
    selfSocket: "unix:///var/run/docker.sock",
    swarmNodes: [
      swarmNode("elsewhere", "x9", { address: "198.51.100.7" }),
      swarmNode("platform-2", "w2", { state: "Down", address: "10.213.2.2" }),
      MANAGER,
    ],
    host,
  });
  assert.deepEqual(view, [
    {
      name: "vm",
      index: 1,
      id: "m1",
      role: "manager",
      availability: "Active",
      state: "Ready",
      address: "192.0.2.2",
      namespace: null,
      socket: "unix:///var/run/docker.sock",
      cut: false,
    },
    {
      name: "platform-2",
      index: 2,
      id: "w2",
      role: "worker",
      availability: "Active",
      state: "Down",
      address: "10.213.2.2",
      namespace: "platform-2",
      socket: "unix:///run/platform-cluster/platform-2.sock",
      cut: true,
    },
    {
      name: "platform-3",
      index: 3,
      id: null,
      role: null,
      availability: null,
      state: "NotInSwarm",
      address: "10.213.3.2",
      namespace: "platform-3",
      socket: "unix:///run/platform-cluster/platform-3.sock",
      cut: false,
    },
    {
      name: "elsewhere",
      index: null,
      id: "x9",
      role: "worker",
      availability: "Active",
      state: "Ready",
      address: "198.51.100.7",
      namespace: null,
      socket: null,
      cut: false,
    },
  ]);
});

Deno.test("resolveCutTarget() takes a node made here and names the known nodes otherwise", () => {
  const nodes = clusterView({
    selfId: "m1",
    selfSocket: "unix:///var/run/docker.sock",
    swarmNodes: [MANAGER, swarmNode("platform-2", "w2"), swarmNode("elsewhere", "x9")],
    host: { links: [link("pf-2", true)], namespaces: ["platform-2"] },
  }) as ClusterNodeView[];
  assert.equal(resolveCutTarget("platform-2", nodes), 2);
  assert.throws(
    () => resolveCutTarget("platform-9", nodes),
    isUsage(/^Unknown node "platform-9"; the nodes are: vm, platform-2, elsewhere$/),
  );
  assert.throws(
    () => resolveCutTarget("vm", nodes),
    isUsage(/^Node "vm" is the machine's own engine \(node 1\) and cannot be cut/),
  );
  assert.throws(
    () => resolveCutTarget("elsewhere", nodes),
    isUsage(/was not made by "cluster up".*cut one of: platform-2$/),
  );
});
