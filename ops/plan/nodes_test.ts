import assert from "node:assert/strict";
import {
  CONSUL_SERVER_LABEL,
  consulServerCount,
  EDGE_LABEL,
  parseSwarmNodes,
  planNodeLabels,
  type SwarmNode,
} from "./nodes.ts";

function node(hostname: string, options: Partial<SwarmNode> = {}): SwarmNode {
  return {
    id: `id-${hostname}`,
    hostname,
    role: "worker",
    availability: "active",
    state: "ready",
    address: "10.0.0.1",
    labels: {},
    self: false,
    leader: false,
    ...options,
  };
}

Deno.test("parseSwarmNodes() reads docker node inspect and puts this node first", () => {
  const nodes = parseSwarmNodes([
    {
      ID: "w",
      Description: { Hostname: "platform-2" },
      Spec: { Role: "worker", Availability: "drain", Labels: { a: "b" } },
      Status: { State: "down", Addr: "10.213.2.2" },
    },
    {
      ID: "m",
      Description: { Hostname: "debian" },
      Spec: { Role: "manager", Availability: "active" },
      Status: { State: "ready", Addr: "0.0.0.0" },
      ManagerStatus: { Leader: true, Addr: "192.0.2.2:2377" },
    },
  ], "m");
  assert.deepEqual(nodes.map((n) => [n.hostname, n.role, n.availability, n.state, n.address]), [
    ["debian", "manager", "active", "ready", "192.0.2.2"],
    ["platform-2", "worker", "drain", "down", "10.213.2.2"],
  ]);
  assert.equal(nodes[0].self, true);
  assert.equal(nodes[0].leader, true);
  assert.deepEqual(nodes[1].labels, { a: "b" });
});

Deno.test("planNodeLabels() places Consul servers and edge nodes", async (t) => {
  await t.step("one node: it is the server and the edge", () => {
    const changes = planNodeLabels([node("solo", { self: true, role: "manager" })]);
    assert.deepEqual(changes.map((c) => [c.node, c.add]), [
      ["solo", { [CONSUL_SERVER_LABEL]: "server", [EDGE_LABEL]: "true" }],
    ]);
    assert.equal(consulServerCount([node("solo")], changes), 1);
  });

  await t.step("three nodes: three servers, this node and the next one are edges", () => {
    const nodes = [
      node("platform-3"),
      node("platform-2"),
      node("debian", { self: true, role: "manager" }),
    ];
    const changes = planNodeLabels(nodes);
    assert.deepEqual(changes.map((c) => [c.node, c.add]), [
      ["debian", { [CONSUL_SERVER_LABEL]: "server", [EDGE_LABEL]: "true" }],
      ["platform-2", { [CONSUL_SERVER_LABEL]: "server", [EDGE_LABEL]: "true" }],
      ["platform-3", { [CONSUL_SERVER_LABEL]: "server" }],
    ]);
    assert.equal(consulServerCount(nodes, changes), 3);
  });

  await t.step("a Swarm grown from one node tops the servers up to three", () => {
    const labelled = { [CONSUL_SERVER_LABEL]: "server", [EDGE_LABEL]: "true" };
    const nodes = [
      node("debian", { self: true, role: "manager", labels: labelled }),
      node("platform-2"),
      node("platform-3"),
      node("platform-4"),
    ];
    const changes = planNodeLabels(nodes);
    assert.deepEqual(changes.map((c) => [c.node, c.add]), [
      ["platform-2", { [CONSUL_SERVER_LABEL]: "server", [EDGE_LABEL]: "true" }],
      ["platform-3", { [CONSUL_SERVER_LABEL]: "server" }],
    ]);
  });

  await t.step("drained and down nodes are not chosen", () => {
    const nodes = [
      node("debian", { self: true, role: "manager" }),
      node("platform-2", { availability: "drain" }),
      node("platform-3", { state: "down" }),
    ];
    const changes = planNodeLabels(nodes);
    assert.deepEqual(changes.map((c) => c.node), ["debian"]);
    assert.equal(consulServerCount(nodes, changes), 1);
  });

  await t.step("labels in place: nothing changes", () => {
    const labels = { [CONSUL_SERVER_LABEL]: "server", [EDGE_LABEL]: "true" };
    const nodes = [
      node("a", { self: true, labels }),
      node("b", { labels: { [EDGE_LABEL]: "true" } }),
    ];
    assert.deepEqual(planNodeLabels(nodes), []);
  });
});
