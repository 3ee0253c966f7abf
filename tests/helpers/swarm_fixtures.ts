/** Swarm tasks, services and Consul instances for unit tests of the ops tool's pure logic. */
import type { ConsulInstance, SwarmService, SwarmTask } from "../../ops/plan/state.ts";

/** A task whose ID is `letter` 25 times (the length of Swarm's task IDs). */
export function swarmTask(
  letter: string,
  state = "running",
  desiredState = "running",
  extra: Partial<SwarmTask> = {},
): SwarmTask {
  return {
    id: letter.repeat(25),
    state,
    desiredState,
    image: "i",
    addresses: [],
    timestamp: "",
    current: true,
    ...extra,
  };
}

/** Service `name` of stack `st`, with `replicas` desired and `tasks`. */
export function swarmService(name: string, replicas: number, tasks: SwarmTask[]): SwarmService {
  return {
    id: name,
    name,
    fullName: `st_${name}`,
    replicas,
    global: false,
    image: "i",
    tasks,
  };
}

/** The passing Consul registration of task `letter` of `service` (Consul name `consulName`). */
export function passingInstance(
  service: string,
  consulName: string,
  letter: string,
): ConsulInstance {
  return {
    id: `${service}-${letter.repeat(25)}`,
    service: consulName,
    address: "",
    port: 1,
    status: "passing",
  };
}

/** `docker.info` of an engine that manages an active Swarm (node `m`). */
export function managerInfo() {
  return Promise.resolve({
    serverVersion: "27",
    swarmState: "active",
    isManager: true,
    nodeId: "m",
  });
}
