import assert from "node:assert/strict";
import { describeProgress, instanceMatchesTask, serviceStatus } from "./agreement.ts";
import { resolveService } from "./services.ts";
import type { ConsulInstance, SwarmService, SwarmTask } from "./state.ts";

const ECHO = resolveService("echo");
const TASK_A = "a".repeat(25);
const TASK_B = "b".repeat(25);

function task(id: string, state = "running", address = "10.0.1.2"): SwarmTask {
  return {
    id,
    state,
    desiredState: state === "shutdown" ? "shutdown" : "running",
    image: "p/echo-agent:1",
    addresses: [address],
    timestamp: "2026-01-01T00:00:00Z",
    current: true,
  };
}

function service(replicas: number, tasks: SwarmTask[]): SwarmService {
  return {
    id: "s",
    name: "echo-agent",
    fullName: "st_echo-agent",
    replicas,
    global: false,
    image: "p/echo-agent:1",
    tasks,
  };
}

function instance(taskId: string, status: ConsulInstance["status"] = "passing"): ConsulInstance {
  return {
    id: `echo-agent-${taskId}`,
    service: "agent-echo",
    address: "10.9.9.9",
    port: 50052,
    status,
  };
}

const OPTIONS = { consulReachable: true };

Deno.test("serviceStatus() agrees when every running task passes in Consul", () => {
  const status = serviceStatus(
    ECHO,
    service(2, [task(TASK_A), task(TASK_B, "running", "10.0.1.3")]),
    [instance(TASK_A), instance(TASK_B)],
    OPTIONS,
  );
  assert.equal(status.converged, true);
  assert.equal(status.passing, 2);
  assert.deepEqual(status.disagreements, []);
  assert.deepEqual(status.instances, [`echo-agent-${TASK_A}`, `echo-agent-${TASK_B}`]);
});

Deno.test("serviceStatus() flags a Consul instance with no task and a task missing from Consul", () => {
  const status = serviceStatus(
    ECHO,
    service(1, [task(TASK_A)]),
    [instance(TASK_B, "critical")],
    OPTIONS,
  );
  assert.equal(status.converged, false);
  assert.deepEqual(status.disagreements.map((entry) => [entry.kind, entry.id]), [
    ["consul-without-task", `echo-agent-${TASK_B}`],
    ["task-without-consul", TASK_A],
  ]);
  assert.equal(status.critical, 1);
});

Deno.test("serviceStatus() waits while a task is starting or not yet passing", async (t) => {
  await t.step("starting task", () => {
    const status = serviceStatus(
      ECHO,
      service(1, [task(TASK_A, "starting")]),
      [instance(TASK_A)],
      OPTIONS,
    );
    assert.equal(status.converged, false);
    assert.deepEqual(status.disagreements, []);
  });
  await t.step("critical instance", () => {
    const status = serviceStatus(
      ECHO,
      service(1, [task(TASK_A)]),
      [instance(TASK_A, "critical")],
      OPTIONS,
    );
    assert.equal(status.converged, false);
  });
  await t.step("a task on the previous spec", () => {
    const old = { ...task(TASK_A), current: false };
    const status = serviceStatus(ECHO, service(1, [old]), [instance(TASK_A)], OPTIONS);
    assert.equal(status.converged, false);
  });
  await t.step("an update in progress", () => {
    const updating = { ...service(1, [task(TASK_A)]), updateState: "updating" };
    const status = serviceStatus(ECHO, updating, [instance(TASK_A)], OPTIONS);
    assert.equal(status.converged, false);
  });
  await t.step("one replica too many during a start-first update", () => {
    const status = serviceStatus(
      ECHO,
      service(1, [task(TASK_A), task(TASK_B, "running", "10.0.1.3")]),
      [instance(TASK_A), instance(TASK_B)],
      OPTIONS,
    );
    assert.equal(status.converged, false);
  });
});

Deno.test("serviceStatus() still agrees with a leftover critical registration (prune removes it)", () => {
  const status = serviceStatus(
    ECHO,
    service(1, [task(TASK_A), task(TASK_B, "shutdown")]),
    [instance(TASK_A), instance(TASK_B, "critical")],
    OPTIONS,
  );
  assert.equal(status.converged, true);
  assert.equal(status.disagreements.length, 1);
});

Deno.test("serviceStatus() of Consul itself needs it running and answering", () => {
  const consul = resolveService("consul");
  const swarm = { ...service(1, [task(TASK_A)]), name: "consul" };
  assert.equal(serviceStatus(consul, swarm, [], { consulReachable: true }).converged, true);
  assert.equal(serviceStatus(consul, swarm, [], { consulReachable: false }).converged, false);
  assert.equal(serviceStatus(consul, undefined, [], { consulReachable: true }).exists, false);
});

Deno.test("instanceMatchesTask() matches by task ID suffix or by address", () => {
  assert.equal(instanceMatchesTask(instance(TASK_A), task(TASK_A)), true);
  const byAddress = { ...instance("x"), address: "10.0.1.2" };
  assert.equal(instanceMatchesTask(byAddress, task(TASK_B)), true);
  assert.equal(instanceMatchesTask(instance("x"), task(TASK_B)), false);
});

Deno.test("instanceMatchesTask() never gives an old task's registration to a task at its address", () => {
  // After destroy + deploy with Consul's data kept, a new task can get the old task's address.
  const ghost = { ...instance(TASK_A, "critical"), address: "10.0.1.2" };
  assert.equal(instanceMatchesTask(ghost, task(TASK_B, "running", "10.0.1.2")), false);
});

Deno.test("serviceStatus() waits while scaled-down tasks drain and counts them", () => {
  const drainingTask = { ...task(TASK_B, "running", "10.0.1.3"), desiredState: "shutdown" };
  const status = serviceStatus(
    ECHO,
    service(1, [task(TASK_A), drainingTask]),
    [instance(TASK_A)],
    OPTIONS,
  );
  assert.equal(status.running, 1);
  assert.equal(status.draining, 1);
  assert.equal(status.converged, false);
  assert.equal(
    describeProgress(status),
    "echo-agent: 1/1 running, 1 draining, 1/1 passing",
  );
  const exited = { ...drainingTask, state: "shutdown" };
  const after = serviceStatus(
    ECHO,
    service(1, [task(TASK_A), exited]),
    [instance(TASK_A)],
    OPTIONS,
  );
  assert.equal(after.draining, 0);
  assert.equal(after.converged, true);
});
