import assert from "node:assert/strict";
import { planPrune } from "./prune.ts";
import { PLATFORM_SERVICES } from "./services.ts";
import type { ConsulInstance, SwarmService, SwarmTask } from "./state.ts";

function task(id: string, state: string, desiredState = "running"): SwarmTask {
  return { id, state, desiredState, image: "i", addresses: [], timestamp: "", current: true };
}

function echo(tasks: SwarmTask[]): SwarmService {
  return {
    id: "s",
    name: "echo-agent",
    fullName: "st_echo-agent",
    replicas: 1,
    global: false,
    image: "i",
    tasks,
  };
}

function instance(id: string, status: ConsulInstance["status"]): ConsulInstance {
  return { id: `echo-agent-${id}`, service: "agent-echo", address: "10.0.0.9", port: 1, status };
}

const A = "a".repeat(25);
const B = "b".repeat(25);
const C = "c".repeat(25);

Deno.test("planPrune() removes registrations of dead tasks and keeps live and starting ones", () => {
  const swarm = [echo([task(A, "running"), task(B, "failed", "shutdown"), task(C, "starting")])];
  const instances = [instance(A, "passing"), instance(B, "critical"), instance(C, "critical")];
  assert.deepEqual(planPrune(PLATFORM_SERVICES, swarm, instances), [
    { service: "agent-echo", instanceId: `echo-agent-${B}`, status: "critical" },
  ]);
});

Deno.test("planPrune() removes everything of a service that is not deployed", () => {
  assert.deepEqual(planPrune(PLATFORM_SERVICES, [], [instance(A, "passing")]), [
    { service: "agent-echo", instanceId: `echo-agent-${A}`, status: "passing" },
  ]);
});

Deno.test("planPrune() leaves registrations of services outside the catalog alone", () => {
  const other = { ...instance(A, "critical"), service: "someone-else" };
  assert.deepEqual(planPrune(PLATFORM_SERVICES, [], [other]), []);
});

Deno.test("planPrune() removes an old stack's registration whose address a new task reuses", () => {
  const reused = { ...task(B, "running"), addresses: ["10.0.0.9"] };
  const swarm = [echo([reused])];
  // A's registration (same address 10.0.0.9) outlived its stack; B's is the new task's own.
  assert.deepEqual(
    planPrune(PLATFORM_SERVICES, swarm, [instance(A, "critical"), instance(B, "passing")]),
    [{ service: "agent-echo", instanceId: `echo-agent-${A}`, status: "critical" }],
  );
});
