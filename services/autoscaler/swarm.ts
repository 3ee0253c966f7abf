/**
 * The autoscaler's view of Swarm through the Docker engine API (dockerode over the manager's
 * socket): the services that carry autoscaling labels with their replica counts, running tasks
 * and update state; and the two writes it makes, a replica count and a label.
 */
import Docker from "dockerode";
import { LABEL_PREFIX } from "./policy.ts";

/** One replicated Swarm service with autoscaling labels. */
export interface SwarmService {
  readonly id: string;
  /** Full name, e.g. `agent-platform_echo-agent`. */
  readonly name: string;
  /** Name without the stack prefix, e.g. `echo-agent`. */
  readonly shortName: string;
  /** The spec version, which an update must name (optimistic locking). */
  readonly version: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly replicas: number;
  /** Tasks in the running state. */
  readonly running: number;
  /** Swarm's update state while an update or rollback is under way or stuck, else null. */
  readonly updateState: string | null;
  /** The spec as Swarm holds it, for an update that changes only the replica count. */
  readonly spec: Readonly<Record<string, unknown>>;
}

/** What the autoscaler needs of Swarm. */
export interface SwarmPort {
  /** Replicated services with at least one `platform.autoscale.*` label. */
  list(): Promise<SwarmService[]>;
  /** Sets the replica count of `service`, as of the version that was read. */
  scale(service: SwarmService, replicas: number): Promise<void>;
}

/** The fields of the engine's service answer read here. */
interface EngineService {
  ID: string;
  Version?: { Index?: number };
  Spec?: {
    Name?: string;
    Labels?: Record<string, string>;
    Mode?: { Replicated?: { Replicas?: number } };
  };
  UpdateStatus?: unknown;
}

/** The fields of the engine's task answer read here. */
interface EngineTask {
  ServiceID?: unknown;
  Status?: { State?: unknown };
}

/** Update states during which the service is not scaled. */
const UPDATE_IN_PROGRESS = new Set([
  "updating",
  "paused",
  "rollback_started",
  "rollback_paused",
]);

/** Swarm's update state when it means an update is not over, else null. */
export function updateInProgress(updateStatus: unknown): string | null {
  const state = (updateStatus as { State?: unknown } | null | undefined)?.State;
  return typeof state === "string" && UPDATE_IN_PROGRESS.has(state) ? state : null;
}

/** `spec` with `replicas` replicas and nothing else changed. */
export function scaledSpec(
  spec: Readonly<Record<string, unknown>>,
  replicas: number,
): Record<string, unknown> {
  const mode = spec.Mode as { Replicated?: Record<string, unknown> } | undefined;
  if (!mode?.Replicated) throw new TypeError("Only replicated services can be scaled");
  return { ...spec, Mode: { ...mode, Replicated: { ...mode.Replicated, Replicas: replicas } } };
}

/** Strips `<stack>_` from a service name when the stack label names it. */
export function shortServiceName(name: string, labels: Readonly<Record<string, string>>): string {
  const stack = labels["com.docker.stack.namespace"];
  return stack && name.startsWith(`${stack}_`) ? name.slice(stack.length + 1) : name;
}

/** Options of {@linkcode DockerSwarm}. */
export interface DockerSwarmOptions {
  /** Only services of this stack (label `com.docker.stack.namespace`); all when undefined. */
  stack?: string;
  /** Services with a label of this prefix are listed (default `platform.autoscale.`). */
  labelPrefix?: string;
}

/** {@linkcode SwarmPort} over the Docker engine API. */
export class DockerSwarm implements SwarmPort {
  readonly #docker: Docker;
  readonly #socketPath: string;
  readonly #stack: string | undefined;
  readonly #labelPrefix: string;

  constructor(socketPath: string, options: DockerSwarmOptions = {}) {
    this.#docker = new Docker({ socketPath });
    this.#socketPath = socketPath;
    this.#stack = options.stack;
    this.#labelPrefix = options.labelPrefix ?? LABEL_PREFIX;
  }

  async list(): Promise<SwarmService[]> {
    const filters: Record<string, string[]> = { mode: ["replicated"] };
    if (this.#stack) filters.label = [`com.docker.stack.namespace=${this.#stack}`];
    const services = await this.#engine<EngineService[]>(
      "list Swarm services",
      () => this.#docker.listServices({ filters }) as Promise<EngineService[]>,
    );
    const managed = services.filter((service) =>
      Object.keys(service.Spec?.Labels ?? {}).some((key) => key.startsWith(this.#labelPrefix))
    );
    if (managed.length === 0) return [];
    const tasks = await this.#engine<EngineTask[]>(
      "list Swarm tasks",
      () =>
        this.#docker.listTasks({
          filters: { service: managed.map((service) => service.ID), "desired-state": ["running"] },
        }) as Promise<EngineTask[]>,
    );
    const running = new Map<string, number>();
    for (const task of tasks) {
      if (task.Status?.State === "running" && typeof task.ServiceID === "string") {
        running.set(task.ServiceID, (running.get(task.ServiceID) ?? 0) + 1);
      }
    }
    return managed.map((service) => {
      const labels = { ...(service.Spec?.Labels ?? {}) };
      const name = service.Spec?.Name ?? service.ID;
      return {
        id: service.ID,
        name,
        shortName: shortServiceName(name, labels),
        version: service.Version?.Index ?? 0,
        labels,
        replicas: service.Spec?.Mode?.Replicated?.Replicas ?? 0,
        running: running.get(service.ID) ?? 0,
        updateState: updateInProgress(service.UpdateStatus),
        spec: (service.Spec ?? {}) as Record<string, unknown>,
      };
    });
  }

  async scale(service: SwarmService, replicas: number): Promise<void> {
    // The version read with the spec: Swarm refuses the update when someone changed the service
    // since, and the next evaluation decides again on fresh state.
    await this.#engine(
      `scale "${service.name}" to ${replicas}`,
      () =>
        this.#docker.getService(service.id).update({
          _query: { version: service.version },
          _body: scaledSpec(service.spec, replicas),
        }),
    );
  }

  async #engine<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      const message = (error as { json?: { message?: unknown } }).json?.message;
      throw new Error(
        `Cannot ${what} through "${this.#socketPath}": ${
          typeof message === "string" ? message : (error as Error).message
        }`,
        { cause: error },
      );
    }
  }
}
