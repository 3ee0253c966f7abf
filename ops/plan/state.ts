/** What the ops tool knows about a running stack: Swarm services with their tasks, Consul instances. */
import type { InstanceHealth } from "../../services/runtime/consul/health.ts";

/** One Swarm task, reduced to what planning needs. */
export interface SwarmTask {
  readonly id: string;
  readonly slot?: number;
  /** `Status.State`: new, pending, assigned, accepted, preparing, starting, running, complete, … */
  readonly state: string;
  /** `DesiredState`: running, shutdown, … */
  readonly desiredState: string;
  readonly image: string;
  readonly containerId?: string;
  /** Its IPv4 addresses on the stack's networks, without prefix length. */
  readonly addresses: readonly string[];
  readonly error?: string;
  /** `Status.Timestamp`, ISO. */
  readonly timestamp: string;
  /** Whether the task runs the service's current spec (false for tasks an update will replace). */
  readonly current: boolean;
  /** The Swarm node it is placed on; undefined while unassigned. */
  readonly nodeId?: string;
}

/** One Swarm service of the stack. */
export interface SwarmService {
  readonly id: string;
  /** Name without the stack prefix, e.g. `echo-agent`. */
  readonly name: string;
  /** Swarm's name, e.g. `agent-platform_echo-agent`. */
  readonly fullName: string;
  /**
   * Desired tasks: the replica count, or for a global service the tasks Swarm wants running (one
   * per eligible node).
   */
  readonly replicas: number;
  /** Whether the service runs one task per eligible node instead of a replica count. */
  readonly global: boolean;
  /** The service's own labels (`deploy.labels` in the stack file; autoscaling policy). */
  readonly labels?: Readonly<Record<string, string>>;
  readonly image: string;
  /** `UpdateStatus.State` when an update ran: updating, paused, completed, rollback_started, … */
  readonly updateState?: string;
  readonly updateMessage?: string;
  /** `UpdateStatus.StartedAt`: tells one update from the previous one. */
  readonly updateStartedAt?: string;
  readonly tasks: readonly SwarmTask[];
}

/** Consul's aggregate health of one instance (one definition: `services/runtime/consul/health.ts`). */
export type HealthStatus = InstanceHealth;

/** One registration in Consul. */
export interface ConsulInstance {
  readonly id: string;
  /** Consul service name, e.g. `agent-echo`. */
  readonly service: string;
  readonly address: string;
  readonly port: number;
  readonly status: HealthStatus;
  /** The Consul node (agent) that holds the registration, when Consul named one. */
  readonly node?: string;
  /** Its Consul weight when passing (`Weights.Passing`), when read from Consul. */
  readonly weight?: number;
}

// The shapes of `docker service inspect` and `docker inspect <task>` that are read here.
interface RawService {
  ID: string;
  Spec: {
    Name: string;
    Labels?: Record<string, string>;
    Mode?: { Replicated?: { Replicas?: number }; Global?: unknown };
    TaskTemplate?: { ContainerSpec?: { Image?: string } } & Record<string, unknown>;
  };
  UpdateStatus?: { State?: string; Message?: string; StartedAt?: string };
}

interface RawTask {
  ID: string;
  NodeID?: string;
  ServiceID: string;
  Slot?: number;
  DesiredState: string;
  Status: {
    State: string;
    Timestamp: string;
    Err?: string;
    ContainerStatus?: { ContainerID?: string };
  };
  Spec?: { ContainerSpec?: { Image?: string } } & Record<string, unknown>;
  NetworksAttachments?: { Addresses?: string[]; Network?: { Spec?: { Name?: string } } }[];
}

/** Joins `docker service inspect` and `docker inspect <tasks>` output into services with tasks. */
export function parseSwarmServices(
  stack: string,
  rawServices: readonly unknown[],
  rawTasks: readonly unknown[],
): SwarmService[] {
  const tasks = rawTasks as RawTask[];
  return (rawServices as RawService[]).map((raw) => {
    const fullName = raw.Spec.Name;
    const prefix = `${stack}_`;
    const name = fullName.startsWith(prefix) ? fullName.slice(prefix.length) : fullName;
    const own = tasks.filter((task) => task.ServiceID === raw.ID);
    const global = raw.Spec.Mode?.Global !== undefined && raw.Spec.Mode?.Replicated === undefined;
    const service: SwarmService = {
      id: raw.ID,
      name,
      fullName,
      replicas: global
        ? own.filter((task) => task.DesiredState === "running").length
        : raw.Spec.Mode?.Replicated?.Replicas ?? 0,
      global,
      labels: { ...raw.Spec.Labels },
      image: stripDigest(raw.Spec.TaskTemplate?.ContainerSpec?.Image ?? ""),
      updateState: raw.UpdateStatus?.State,
      updateMessage: raw.UpdateStatus?.Message,
      updateStartedAt: raw.UpdateStatus?.StartedAt,
      tasks: own.map((task) => parseTask(task, specKey(raw.Spec.TaskTemplate)))
        .sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0) || a.timestamp.localeCompare(b.timestamp)),
    };
    return service;
  }).sort((a, b) => a.name.localeCompare(b.name));
}

function parseTask(raw: RawTask, serviceSpec: string): SwarmTask {
  const addresses = (raw.NetworksAttachments ?? [])
    .filter((attachment) => attachment.Network?.Spec?.Name !== "ingress")
    .flatMap((attachment) => attachment.Addresses ?? [])
    .map((cidr) => cidr.split("/")[0]);
  return {
    id: raw.ID,
    slot: raw.Slot,
    state: raw.Status.State,
    desiredState: raw.DesiredState,
    image: stripDigest(raw.Spec?.ContainerSpec?.Image ?? ""),
    containerId: raw.Status.ContainerStatus?.ContainerID || undefined,
    addresses,
    error: raw.Status.Err || undefined,
    timestamp: raw.Status.Timestamp,
    current: specKey(raw.Spec) === serviceSpec,
    nodeId: raw.NodeID || undefined,
  };
}

/**
 * A comparable form of a task spec: keys sorted, empty and zero values and the fields Swarm fills
 * in on tasks only (`Runtime`) left out, so a task made from the service's template compares equal.
 */
export function specKey(spec: Record<string, unknown> | undefined): string {
  const { Runtime: _runtime, ...rest } = spec ?? {};
  return JSON.stringify(canonical(rest)) ?? "";
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(canonical).filter((item) => item !== undefined);
    return items.length === 0 ? undefined : items;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value as Record<string, unknown>).sort()
      .map((key) => [key, canonical((value as Record<string, unknown>)[key])] as const)
      .filter(([, item]) => item !== undefined);
    return entries.length === 0 ? undefined : Object.fromEntries(entries);
  }
  // Go's omitempty: a zero value and an absent field mean the same, and the CLI and the engine
  // do not always agree on which fields they write.
  return value === null || value === false || value === 0 || value === "" ? undefined : value;
}

/** `name:tag@sha256:…` → `name:tag`: Swarm pins digests, people read tags. */
export function stripDigest(image: string): string {
  const at = image.indexOf("@");
  return at === -1 ? image : image.slice(0, at);
}
