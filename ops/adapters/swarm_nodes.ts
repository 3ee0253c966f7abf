/**
 * Thin adapter over the Swarm membership of one engine (`docker -H <engine>`): its Swarm state,
 * init, join, leave, and the manager's node list. Kept apart from `DockerCli`, which speaks to the
 * machine's engine only, because here every call names the engine it talks to.
 */
import { OpsError } from "../errors.ts";
import { parseSwarmNodes, type SwarmNode } from "../plan/cluster.ts";
import { type CommandResult, lastLines, runCommand, type RunCommandOptions } from "./command.ts";

/** One engine's Swarm state, from `docker info`. */
export interface SwarmInfo {
  /** inactive, pending, active, error, locked */
  swarmState: string;
  nodeId: string;
  /** The address this node advertises to the Swarm. */
  nodeAddress: string;
  isManager: boolean;
  /** The node IDs of the managers it knows. */
  managerIds: string[];
  /** The managers it knows, each with its address (`host:port`). */
  managers: { id: string; address: string }[];
  /** The Swarm's error, when it reports one. */
  error: string;
}

/** The machine's engine as `docker` reaches it by default (`DOCKER_HOST`, else the usual socket). */
export function defaultDockerHost(): string {
  return Deno.env.get("DOCKER_HOST") || "unix:///var/run/docker.sock";
}

/** A Docker engine's Swarm side; `host` is `docker -H`'s value, undefined for the default engine. */
export class SwarmEngine {
  readonly host: string | undefined;

  constructor(host?: string) {
    this.host = host;
  }

  #run(args: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
    return runCommand("docker", this.host ? ["-H", this.host, ...args] : args, options);
  }

  /** The engine's Swarm state; undefined when the engine does not answer. */
  async info(signal?: AbortSignal): Promise<SwarmInfo | undefined> {
    let result: CommandResult;
    try {
      result = await this.#run(["info", "--format", "{{json .}}"], { check: false, signal });
    } catch (error) {
      if (error instanceof OpsError && error.code === "NOT_INSTALLED") throw error;
      return undefined;
    }
    let info: {
      ServerVersion?: string;
      Swarm?: {
        NodeID?: string;
        NodeAddr?: string;
        LocalNodeState?: string;
        ControlAvailable?: boolean;
        Error?: string;
        RemoteManagers?: { NodeID?: string; Addr?: string }[] | null;
      };
    };
    try {
      info = JSON.parse(result.stdout.trim());
    } catch {
      return undefined;
    }
    if (result.code !== 0 || !info?.ServerVersion) return undefined;
    const managers = info.Swarm?.RemoteManagers ?? [];
    return {
      swarmState: info.Swarm?.LocalNodeState ?? "inactive",
      nodeId: info.Swarm?.NodeID ?? "",
      nodeAddress: info.Swarm?.NodeAddr ?? "",
      isManager: info.Swarm?.ControlAvailable ?? false,
      managerIds: managers.map((manager) => manager.NodeID ?? "").filter((id) => id !== ""),
      managers: managers.map((manager) => ({
        id: manager.NodeID ?? "",
        address: manager.Addr ?? "",
      })),
      error: info.Swarm?.Error ?? "",
    };
  }

  /** `docker swarm init` with the engine's default advertise address. */
  async init(): Promise<void> {
    const result = await this.#run(["swarm", "init"], { check: false });
    if (result.code !== 0) {
      throw new OpsError(`Cannot initialise a Swarm: ${lastLines(result.stderr, 3)}`, {
        code: "SWARM_INIT_FAILED",
      });
    }
  }

  /** The token workers join with (a manager only). */
  async workerToken(): Promise<string> {
    const result = await this.#run(["swarm", "join-token", "--quiet", "worker"]);
    return result.stdout.trim();
  }

  /** Joins the Swarm of the manager at `address` (`host:port`) as a worker. */
  async join(token: string, address: string): Promise<void> {
    // The token goes as an argument: `docker swarm join` reads it from nowhere else. It is the
    // worker token of a local test cluster, and the process list is root's own here.
    const result = await this.#run(["swarm", "join", "--token", token, address], { check: false });
    if (result.code !== 0) {
      throw new OpsError(
        `Cannot join the Swarm at "${address}": ${lastLines(result.stderr, 3)}`,
        { code: "SWARM_JOIN_FAILED" },
      );
    }
  }

  /** Leaves whatever Swarm this engine is in (never called on the machine's engine). */
  async leave(): Promise<void> {
    await this.#run(["swarm", "leave", "--force"], { check: false });
  }

  /** Every node of the Swarm (a manager only). */
  async nodes(): Promise<SwarmNode[]> {
    const ids = await this.#run(["node", "ls", "--quiet"]);
    const list = ids.stdout.split("\n").map((line) => line.trim()).filter((line) => line !== "");
    if (list.length === 0) return [];
    // A node removed between the two calls makes inspect fail for it: keep what could be read.
    const result = await this.#run(["node", "inspect", ...list], { check: false });
    const text = result.stdout.trim();
    return text === "" ? [] : parseSwarmNodes(text);
  }

  /** Removes a node from the Swarm, whatever its state (a manager only); gone already is fine. */
  async removeNode(id: string): Promise<void> {
    const result = await this.#run(["node", "rm", "--force", id], { check: false });
    if (result.code === 0) return;
    if (!(await this.nodes()).some((node) => node.id === id)) return;
    throw new OpsError(
      `Cannot remove node "${id}" from the Swarm: ${lastLines(result.stderr, 2)}`,
      { code: "NODE_RM_FAILED" },
    );
  }
}
