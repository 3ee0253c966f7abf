/**
 * The Docker Engine API through `npm:dockerode`, for what the API does well: services and their
 * tasks, nodes, secrets and container logs. One HTTP request over the engine's socket replaces
 * each `docker` process (a `status` poll was four: `service ls`, `service inspect`, `service ps`,
 * `inspect`), answers are the API's JSON as they are (no `--format` templates), and writes name
 * the version they were read at (`?version=`), so Swarm refuses a change made on stale state.
 *
 * dockerode is loaded on first use: commands that never reach the engine (`lb sync`, `weight`)
 * do not pay for it.
 */
import type Dockerode from "dockerode";
import { OpsError } from "../errors.ts";
import { parseSwarmNodes, type SwarmNode } from "../plan/nodes.ts";
import { parseSwarmServices, type SwarmService } from "../plan/state.ts";

/** What an engine error says, from the API's JSON body when there is one. */
function engineMessage(error: unknown): string {
  const message = (error as { json?: { message?: unknown } }).json?.message;
  return typeof message === "string" ? message : (error as Error).message;
}

/** The HTTP status of an engine error, 0 when there was no answer. */
function engineStatus(error: unknown): number {
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === "number" ? status : 0;
}

/** The Swarm object API of one Docker engine (its UNIX socket, or `DOCKER_HOST`). */
export class DockerEngine {
  readonly #socketPath: string | undefined;
  #client: Promise<Dockerode> | undefined;

  /** `socketPath`: the engine's socket; default `DOCKER_HOST`, else `/var/run/docker.sock`. */
  constructor(options: { socketPath?: string } = {}) {
    this.#socketPath = options.socketPath;
  }

  #docker(): Promise<Dockerode> {
    this.#client ??= import("dockerode").then(({ default: Docker }) =>
      this.#socketPath === undefined ? new Docker() : new Docker({ socketPath: this.#socketPath })
    );
    return this.#client;
  }

  async #call<T>(what: string, call: (docker: Dockerode) => Promise<T>): Promise<T> {
    const docker = await this.#docker();
    try {
      return await call(docker);
    } catch (error) {
      throw new OpsError(`Cannot ${what}: ${engineMessage(error)}`, {
        code: "DOCKER_API",
        cause: error,
      });
    }
  }

  /** The stack's services, each with its tasks (current and past, as `docker service ps`). */
  async services(stack: string): Promise<SwarmService[]> {
    const raw = await this.#stackServices(stack);
    if (raw.length === 0) return [];
    const tasks = await this.#call(
      `list the tasks of stack "${stack}"`,
      (docker) =>
        docker.listTasks({
          filters: { service: raw.map((service) => service.ID) },
        }) as Promise<unknown[]>,
    );
    return parseSwarmServices(stack, raw, tasks);
  }

  /** The service labels of the stack's services, by Swarm name (`<stack>_<service>`). */
  async serviceLabels(stack: string): Promise<Record<string, Record<string, string>>> {
    const out: Record<string, Record<string, string>> = {};
    for (const service of await this.#stackServices(stack)) {
      const labels: Record<string, string> = {};
      for (const [key, value] of Object.entries(service.Spec?.Labels ?? {})) {
        if (typeof value === "string") labels[key] = value;
      }
      if (typeof service.Spec?.Name === "string") out[service.Spec.Name] = labels;
    }
    return out;
  }

  /** Sets the replica count of each service (by Swarm name), each at the version it was read. */
  async scale(replicas: Readonly<Record<string, number>>): Promise<void> {
    for (const [name, count] of Object.entries(replicas)) {
      await this.#call(`scale "${name}" to ${count}`, async (docker) => {
        const service = docker.getService(name);
        const current = await service.inspect() as EngineService;
        const mode = current.Spec?.Mode;
        if (!mode?.Replicated) throw new Error(`"${name}" is not a replicated service`);
        await service.update({
          _query: { version: current.Version?.Index },
          _body: {
            ...current.Spec,
            Mode: { ...mode, Replicated: { ...mode.Replicated, Replicas: count } },
          },
        });
      });
    }
  }

  /** The Swarm's nodes; `selfId` is this engine's node ID. */
  async nodes(selfId: string): Promise<SwarmNode[]> {
    const raw = await this.#call(
      "list the Swarm's nodes",
      (docker) => docker.listNodes() as Promise<unknown[]>,
    );
    return parseSwarmNodes(raw, selfId);
  }

  /** Changes a node's spec (labels, availability) at the version it was read. */
  async updateNode(
    id: string,
    change: (spec: NodeSpec) => NodeSpec,
  ): Promise<void> {
    await this.#call(`update node "${id}"`, async (docker) => {
      const node = docker.getNode(id);
      const current = await node.inspect() as { Version?: { Index?: number }; Spec?: NodeSpec };
      await node.update({
        _query: { version: current.Version?.Index },
        _body: change(current.Spec ?? {}),
      });
    });
  }

  /** The ID of the secret named exactly `name`, or undefined. */
  async secretId(name: string): Promise<string | undefined> {
    // The engine's name filter matches prefixes: keep the exact name only.
    const found = await this.#call(
      `look up the secret "${name}"`,
      (docker) => docker.listSecrets({ filters: { name: [name] } }) as Promise<EngineSecret[]>,
    );
    return found.find((secret) => secret.Spec?.Name === name)?.ID;
  }

  /** Creates a secret; its value travels in the request body only. */
  async createSecret(
    name: string,
    value: Uint8Array,
    labels: Readonly<Record<string, string>>,
  ): Promise<void> {
    await this.#call(
      `create the secret "${name}"`,
      (docker) =>
        // An explicit, empty `_query`: docker-modem copies plain options (and `_body` too, when
        // there is no `_query`) into the URL's query string, and the value has no business in a URL.
        docker.createSecret({
          _query: {},
          _body: { Name: name, Labels: { ...labels }, Data: btoa(String.fromCharCode(...value)) },
        }),
    );
  }

  /** Names of the secrets carrying `label` (`key=value` or `key`). */
  async secretNames(label: string): Promise<string[]> {
    const found = await this.#call(
      `list the secrets labelled "${label}"`,
      (docker) => docker.listSecrets({ filters: { label: [label] } }) as Promise<EngineSecret[]>,
    );
    return found.map((secret) => secret.Spec?.Name ?? secret.ID).sort();
  }

  /** Removes secrets by name; one still in use is an error, one already gone is not. */
  async removeSecrets(names: readonly string[]): Promise<void> {
    for (const name of names) {
      const id = await this.secretId(name);
      if (id === undefined) continue;
      await this.#call(`remove the secret "${name}"`, (docker) => docker.getSecret(id).remove());
    }
  }

  /**
   * A container's log lines, stdout and stderr, each with its timestamp; `since` as the CLI takes
   * it (a duration such as `10m`, RFC 3339, or Unix seconds). A container gone is no lines.
   */
  async containerLogs(container: string, since?: string, now = Date.now()): Promise<string[]> {
    const docker = await this.#docker();
    let body: unknown;
    try {
      body = await docker.getContainer(container).logs({
        follow: false,
        stdout: true,
        stderr: true,
        timestamps: true,
        ...(since === undefined ? {} : { since: sinceSeconds(since, now) }),
      });
    } catch (error) {
      if (engineStatus(error) === 404) return [];
      throw new OpsError(`Cannot read the log of "${container}": ${engineMessage(error)}`, {
        code: "DOCKER_API",
        cause: error,
      });
    }
    const bytes = body instanceof Uint8Array ? body : new TextEncoder().encode(String(body));
    return demuxLog(bytes).split("\n").filter((line) => line !== "");
  }

  async #stackServices(stack: string): Promise<EngineService[]> {
    return await this.#call(
      `list the services of stack "${stack}"`,
      (docker) =>
        docker.listServices({
          filters: { label: [`com.docker.stack.namespace=${stack}`] },
        }) as Promise<EngineService[]>,
    );
  }
}

/** A node's spec as the engine holds it. */
export interface NodeSpec {
  Role?: string;
  Availability?: string;
  Labels?: Record<string, string>;
  [field: string]: unknown;
}

/** The fields of the engine's secret answer read here. */
interface EngineSecret {
  ID: string;
  Spec?: { Name?: string };
}

/** The fields of the engine's service answer read here. */
interface EngineService {
  ID: string;
  Version?: { Index?: number };
  Spec?: {
    Name?: string;
    Labels?: Record<string, unknown>;
    Mode?: { Replicated?: { Replicas?: number }; Global?: unknown };
    [field: string]: unknown;
  };
}

/**
 * `--since` as the `docker` CLI reads it, turned into the Unix seconds the API takes: a Go duration
 * (`90s`, `10m`, `1h30m`) back from `now`, an RFC 3339 time, or Unix seconds.
 */
export function sinceSeconds(since: string, now: number): number {
  const text = since.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.floor(Number(text));
  if (/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) {
    const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
    let ms = 0;
    for (const [, amount, , unit] of text.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g)) {
      ms += Number(amount) * units[unit];
    }
    return Math.floor((now - ms) / 1000);
  }
  const parsed = Date.parse(text);
  if (Number.isNaN(parsed)) {
    throw new OpsError(
      `Invalid --since "${since}": expected a duration ("10m"), an RFC 3339 time or Unix seconds`,
      { code: "USAGE", exitCode: 2 },
    );
  }
  return Math.floor(parsed / 1000);
}

/**
 * The text of a log answer. Without a TTY the engine multiplexes stdout and stderr in frames: one
 * byte for the stream (1 or 2), three zero bytes, a big-endian 32-bit length, then the payload.
 * A TTY's log is plain text.
 */
export function demuxLog(bytes: Uint8Array): string {
  const decoder = new TextDecoder();
  const framed = bytes.length >= 8 && [0, 1, 2].includes(bytes[0]) && bytes[1] === 0 &&
    bytes[2] === 0 && bytes[3] === 0;
  if (!framed) return decoder.decode(bytes);
  let text = "";
  let offset = 0;
  while (offset + 8 <= bytes.length) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + offset + 4, 4).getUint32(0);
    text += decoder.decode(bytes.subarray(offset + 8, offset + 8 + length), { stream: true });
    offset += 8 + length;
  }
  return text + decoder.decode();
}
