import { managerInfo } from "../../tests/helpers/swarm_fixtures.ts";
import assert from "node:assert/strict";
import { fakeContext } from "../../tests/helpers/fake_ops.ts";
import type { SwarmNode } from "../plan/nodes.ts";
import { resolveService } from "../plan/services.ts";
import type { ConsulInstance, SwarmService, SwarmTask } from "../plan/state.ts";
import { drainCommand } from "./node.ts";

const ECHO = resolveService("echo");

function node(id: string, self: boolean): SwarmNode {
  return {
    id,
    hostname: `host-${id}`,
    role: self ? "manager" : "worker",
    availability: "active",
    state: "ready",
    address: "10.0.0.1",
    labels: {},
    self,
    leader: self,
  };
}

function task(letter: string, nodeId: string, state = "running", desired = "running"): SwarmTask {
  return {
    id: letter.repeat(25),
    state,
    desiredState: desired,
    image: "i",
    addresses: [],
    timestamp: "",
    current: true,
    nodeId,
  };
}

function echo(tasks: SwarmTask[]): SwarmService[] {
  return [{
    id: "s",
    name: "echo-agent",
    fullName: "st_echo-agent",
    replicas: 2,
    global: false,
    image: "i",
    tasks,
  }];
}

function passing(letter: string): ConsulInstance {
  const id = `echo-agent-${letter.repeat(25)}`;
  return { id, service: "agent-echo", address: "", port: 1, status: "passing" };
}

Deno.test("drain moves the node's tasks away, waits until they left and everything agrees", async () => {
  // Before the drain, task b runs on the worker; after it, b drains and c replaces it on the manager.
  const views = [
    echo([task("a", "m"), task("b", "w", "running", "shutdown"), task("c", "m", "starting")]),
    echo([task("a", "m"), task("b", "w", "shutdown", "shutdown"), task("c", "m")]),
  ];
  let drained = false;
  let polls = 0;
  const run = fakeContext({
    flags: { json: true },
    services: [ECHO],
    docker: {
      info: managerInfo,
      nodes: () => Promise.resolve([node("m", true), node("w", false)]),
      nodeAvailability: () => {
        drained = true;
        return Promise.resolve();
      },
      services: () => Promise.resolve(drained ? views[Math.min(polls++, views.length - 1)] : []),
    },
    consul: {
      ready: () => Promise.resolve(true),
      instances: () => Promise.resolve([passing("a"), passing("c")]),
    },
  });

  await drainCommand(run.context, "host-w");

  const drain = run.calls.find((call) => call.name === "docker.nodeAvailability");
  assert.deepEqual(drain?.args, ["w", "drain"]);
  assert.match(run.stderr.join(""), /host-w: 1 tasks of the stack left/);
  const result = JSON.parse(run.stdout.join(""));
  assert.equal(result.node, "host-w");
  assert.equal(result.action, "drained");
  // deno-lint-ignore no-explicit-any
  const worker = result.nodes.find((entry: any) => entry.node === "host-w");
  assert.deepEqual(worker.running, {});
  assert.equal(worker.leaving, 0);
});

Deno.test("drain refuses the node the ops tool runs on, before touching anything", async () => {
  const run = fakeContext({
    docker: {
      info: managerInfo,
      nodes: () => Promise.resolve([node("m", true), node("w", false)]),
    },
  });
  await assert.rejects(drainCommand(run.context, "host-m"), /Cannot drain "host-m"/);
  assert.deepEqual(run.names(), ["docker.info", "docker.nodes"]);
});
