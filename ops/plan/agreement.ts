/** Joins Swarm's and Consul's views of each service and says whether they agree. */
import type { HaproxyView } from "../../haproxy/stats_view.ts";
import { joinLbView, type LbDisagreement, type LbJoin } from "./haproxy_view.ts";
import type { PlatformService } from "./services.ts";
import type { ConsulInstance, SwarmService, SwarmTask } from "./state.ts";

/** Something Swarm and Consul disagree on. */
export interface Disagreement {
  kind: "consul-without-task" | "task-without-consul" | LbDisagreement["kind"];
  /** The Consul instance ID or the Swarm task ID. */
  id: string;
  message: string;
}

/** One service as both Swarm and Consul see it. */
export interface ServiceStatus {
  service: string;
  consulName: string;
  /** Whether Consul checks it, or only Swarm's healthcheck does. */
  health: PlatformService["health"];
  exists: boolean;
  desired: number;
  running: number;
  /** Tasks Swarm is stopping that still run (a scale-down or update draining them). */
  draining: number;
  image: string;
  updateState: string | null;
  passing: number;
  warning: number;
  critical: number;
  /** Consul instance IDs, sorted. */
  instances: string[];
  disagreements: Disagreement[];
  /** HAProxy's view of the instances, for the service the load balancer fronts; else null. */
  lb: LbJoin | null;
  /**
   * Desired replicas running in Swarm, each passing in Consul, and nothing else passing; for the
   * service behind the load balancer, also each UP in HAProxy and nothing else UP there.
   */
  converged: boolean;
}

/** Whether a task is up in Swarm's eyes. */
export function isRunning(task: SwarmTask): boolean {
  return task.state === "running" && task.desiredState === "running";
}

/** Whether a task is or may soon be up: Consul may already hold its registration. */
export function isAlive(task: SwarmTask): boolean {
  const starting = ["new", "pending", "assigned", "accepted", "preparing", "ready", "starting"];
  return task.desiredState === "running" &&
    (task.state === "running" || starting.includes(task.state));
}

/** Whether a task Swarm is stopping still runs (it drains: deregistered, finishing its calls). */
export function isDraining(task: SwarmTask): boolean {
  return task.desiredState !== "running" && ["running", "starting"].includes(task.state);
}

/** A Swarm task ID (25 lower-case letters and digits) ending an instance ID, as the stack sets. */
const TASK_ID_SUFFIX = /-([a-z0-9]{25})$/;

/**
 * Whether a Consul instance belongs to a task. An ID that names a task (`<service>-<task ID>`)
 * belongs to that task alone: after a redeploy a new task may get the address an old task had,
 * whose registration is still in Consul. Other IDs match by address.
 */
export function instanceMatchesTask(instance: ConsulInstance, task: SwarmTask): boolean {
  const taskId = TASK_ID_SUFFIX.exec(instance.id)?.[1];
  if (taskId !== undefined) return taskId === task.id;
  return instance.address !== "" && task.addresses.includes(instance.address);
}

/** Options of {@linkcode serviceStatus}. */
export interface ServiceStatusOptions {
  /** Whether Consul answered; the Consul server itself agrees when Swarm runs it and it answers. */
  consulReachable: boolean;
  /** HAProxy's view of the service it fronts (Consul name), when the stack runs a load balancer. */
  lb?: { service: string; view: HaproxyView } | null;
}

/** The joined view of one service. `swarm` is undefined when the stack has no such service. */
export function serviceStatus(
  service: PlatformService,
  swarm: SwarmService | undefined,
  instances: readonly ConsulInstance[],
  options: ServiceStatusOptions,
): ServiceStatus {
  const tasks = swarm?.tasks ?? [];
  const running = tasks.filter(isRunning);
  const alive = tasks.filter(isAlive);
  const draining = tasks.filter(isDraining).length;
  const desired = swarm?.replicas ?? 0;
  const base = {
    service: service.name,
    consulName: service.consulName,
    health: service.health,
    exists: swarm !== undefined,
    desired,
    running: running.length,
    draining,
    image: swarm?.image ?? "",
    updateState: swarm?.updateState ?? null,
  };
  // An update in progress, tasks on an older spec, or tasks still draining (`docker service ls`
  // shows 3/1 after a scale-down until they exit) mean Swarm has not finished yet.
  const settled = !["updating", "rollback_started"].includes(swarm?.updateState ?? "") &&
    running.every((task) => task.current) && draining === 0;
  if (service.health === "swarm") {
    // Swarm counts a task as running only once its Docker healthcheck passes.
    const isConsul = service.image === "consul";
    return {
      ...base,
      passing: isConsul && options.consulReachable ? running.length : 0,
      warning: 0,
      critical: 0,
      instances: [],
      disagreements: [],
      lb: null,
      converged: swarm !== undefined && running.length === desired && settled &&
        (!isConsul || options.consulReachable),
    };
  }

  const own = instances.filter((instance) => instance.service === service.consulName);
  const disagreements: Disagreement[] = [];
  for (const instance of own) {
    if (!alive.some((task) => instanceMatchesTask(instance, task))) {
      disagreements.push({
        kind: "consul-without-task",
        id: instance.id,
        message:
          `Consul holds "${instance.id}" (${instance.status}) but no task of "${service.name}" runs it`,
      });
    }
  }
  let runningAndPassing = 0;
  for (const task of running) {
    const match = own.find((instance) => instanceMatchesTask(instance, task));
    if (match?.status === "passing") runningAndPassing++;
    if (!match) {
      disagreements.push({
        kind: "task-without-consul",
        id: task.id,
        message: `Task "${task.id}" of "${service.name}" runs but is missing from Consul`,
      });
    }
  }
  const passing = own.filter((instance) => instance.status === "passing").length;
  const lb = options.lb && options.lb.service === service.consulName
    ? joinLbView(options.lb.view, own)
    : null;
  if (lb) disagreements.push(...lb.disagreements);
  return {
    ...base,
    passing,
    warning: own.filter((instance) => instance.status === "warning").length,
    critical: own.filter((instance) => instance.status === "critical").length,
    instances: own.map((instance) => instance.id).sort(),
    disagreements,
    lb,
    converged: swarm !== undefined && settled && running.length === desired &&
      runningAndPassing === desired && passing === desired && (lb === null || lb.agrees),
  };
}

/** The joined view of every service of the catalog. */
export function stackStatus(
  services: readonly PlatformService[],
  swarm: readonly SwarmService[],
  instances: readonly ConsulInstance[],
  options: ServiceStatusOptions,
): ServiceStatus[] {
  return services.map((service) =>
    serviceStatus(service, swarm.find((entry) => entry.name === service.name), instances, options)
  );
}

/** A one-line summary of how far a service is from agreement, for progress output. */
export function describeProgress(status: ServiceStatus): string {
  const parts = [`${status.running}/${status.desired} running`];
  if (status.draining > 0) parts.push(`${status.draining} draining`);
  if (status.health === "consul") parts.push(`${status.passing}/${status.desired} passing`);
  if (status.lb) {
    const up = Object.values(status.lb.byInstance).filter((state) => state === "UP").length;
    parts.push(`${up}/${status.desired} UP in HAProxy`);
  }
  if (status.updateState) parts.push(`update ${status.updateState}`);
  return `${status.service}: ${parts.join(", ")}${status.converged ? " ✓" : ""}`;
}
