/**
 * Thin adapter over the Docker engine: the Engine API (`npm:dockerode`, `docker_engine.ts`) for
 * services, tasks, nodes, secrets and container logs; the `docker` CLI where there is no API or the
 * CLI does the work: `docker stack deploy` and `stack rm` (compose-file parsing, Swarm templates,
 * networks, volumes exist only in the CLI), `build`, `push`, `run`, `info` (it also tells a missing
 * engine from a missing command), `service update`/`rollback` (commands pass CLI flags), following
 * a service's logs across nodes (`service logs --follow`), networks and volumes.
 */
import { OpsError } from "../errors.ts";
import type { SwarmNode } from "../plan/nodes.ts";
import type { SwarmService } from "../plan/state.ts";
import { type CommandResult, lastLines, runCommand, type RunCommandOptions } from "./command.ts";
import { DockerEngine } from "./docker_engine.ts";
import { delay } from "../../services/runtime/delay.ts";

/** The engine's answer to `docker info`, reduced. */
export interface EngineInfo {
  serverVersion: string;
  /** inactive, pending, active, error, locked */
  swarmState: string;
  isManager: boolean;
  /** This engine's Swarm node ID; empty outside a Swarm. */
  nodeId: string;
}

/** Options of {@linkcode DockerCli.build}. */
export interface BuildOptions {
  context: string;
  dockerfile: string;
  tag: string;
  buildArgs?: Record<string, string>;
  onLine?: (line: string) => void;
}

/** Options of {@linkcode DockerCli.run}. */
export interface RunContainerOptions {
  image: string;
  network?: string;
  env?: Record<string, string>;
  args: readonly string[];
  name?: string;
  labels?: Record<string, string>;
  /** Kernel settings of the container's network namespace (`--sysctl`). */
  sysctls?: Record<string, string>;
  /** Files of this machine mounted read-only into the container, by path inside it. */
  files?: Record<string, string>;
  /** Called with each line the container writes to stderr, as it comes. */
  onStderrLine?: (line: string) => void;
  /** `uid:gid` to run as instead of the image's user. */
  user?: string;
  /** A read-only root file system and no capability (`--read-only --cap-drop ALL`). */
  unprivileged?: boolean;
}

/** Options of {@linkcode DockerCli.serviceLogs}. */
export interface LogsOptions {
  follow?: boolean;
  since?: string;
  onLine(line: string): void;
  signal?: AbortSignal;
}

/** What commands use of Docker: {@linkcode DockerCli}'s methods (tests give a fake). */
export type Docker = Pick<DockerCli, keyof DockerCli>;

/** The Docker engine through the `docker` CLI. */
export class DockerCli {
  readonly #program: string;
  readonly #engine = new DockerEngine();

  constructor(program = "docker") {
    this.#program = program;
  }

  #run(args: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
    return runCommand(this.#program, args, options);
  }

  /** The engine's version and Swarm state; a clear error when no engine answers. */
  async info(): Promise<EngineInfo> {
    let result: CommandResult;
    try {
      result = await this.#run(["info", "--format", "{{json .}}"], { check: false });
    } catch (error) {
      throw new OpsError(
        'Cannot find the "docker" command: install the Docker engine (./platform deploy does it)',
        { code: "DOCKER_MISSING", cause: error },
      );
    }
    const info = parseJsonLine(result.stdout) as {
      ServerVersion?: string;
      ServerErrors?: string[];
      Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; NodeID?: string };
    } | undefined;
    if (result.code !== 0 || !info?.ServerVersion) {
      const why = info?.ServerErrors?.join("; ") || lastLines(result.stderr, 2) || "no answer";
      throw new OpsError(
        `Cannot reach the Docker engine: ${why} (start it, or run "./platform deploy" to install and start it)`,
        { code: "DOCKER_UNREACHABLE" },
      );
    }
    return {
      serverVersion: info.ServerVersion,
      swarmState: info.Swarm?.LocalNodeState ?? "inactive",
      isManager: info.Swarm?.ControlAvailable ?? false,
      nodeId: info.Swarm?.NodeID ?? "",
    };
  }

  /** Makes this engine a single-node Swarm manager. */
  async swarmInit(): Promise<void> {
    const first = await this.#run(["swarm", "init"], { check: false });
    if (first.code === 0) return;
    // Several interfaces and no default route to pick from: a one-node Swarm can use loopback.
    if (/advertise address/i.test(first.stderr)) {
      await this.#run(["swarm", "init", "--advertise-addr", "127.0.0.1"]);
      return;
    }
    throw new OpsError(`Cannot initialise a Swarm: ${lastLines(first.stderr, 3)}`, {
      code: "SWARM_INIT_FAILED",
    });
  }

  /** The ID of a local image, or undefined when there is none. */
  async imageId(ref: string): Promise<string | undefined> {
    const result = await this.#run(["image", "inspect", "--format", "{{.Id}}", ref], {
      check: false,
    });
    return result.code === 0 ? result.stdout.trim() : undefined;
  }

  /** Local image references (`repo:tag`) whose repository starts with `prefix`. */
  async imageTags(prefix: string): Promise<string[]> {
    const result = await this.#run(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    return result.stdout.split("\n").map((line) => line.trim())
      .filter((line) => line.startsWith(prefix));
  }

  /** Tries `docker pull`; false when no registry answers within `timeoutMs`. */
  async tryPull(ref: string, timeoutMs: number): Promise<boolean> {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const result = await this.#run(["pull", "--quiet", ref], { check: false, signal });
      return result.code === 0;
    } catch {
      return false;
    }
  }

  /** Builds an image with the classic builder (no buildx plugin is assumed). */
  async build(options: BuildOptions): Promise<void> {
    // --force-rm: a failed step leaves no stopped container behind.
    const args = ["build", "--force-rm", "--file", options.dockerfile, "--tag", options.tag];
    for (const [key, value] of Object.entries(options.buildArgs ?? {})) {
      args.push("--build-arg", `${key}=${value}`);
    }
    args.push(options.context);
    await this.#run(args, {
      env: { DOCKER_BUILDKIT: "0" },
      onStdoutLine: options.onLine,
      onStderrLine: options.onLine,
    });
  }

  /** Adds a tag to an image. */
  async tag(source: string, target: string): Promise<void> {
    await this.#run(["tag", source, target]);
  }

  /** Imports a root file system directory as an image (`tar | docker import`). */
  async importRootfs(directory: string, ref: string): Promise<void> {
    const tar = new Deno.Command("tar", {
      args: ["-C", directory, "--numeric-owner", "-c", "."],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const docker = new Deno.Command(this.#program, {
      args: ["import", "--change", 'CMD ["/bin/bash"]', "-", ref],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await tar.stdout.pipeTo(docker.stdin);
    const [tarStatus, tarErr, dockerOut] = await Promise.all([
      tar.status,
      new Response(tar.stderr).text(),
      docker.output(),
    ]);
    if (!tarStatus.success) {
      throw new OpsError(`Cannot archive "${directory}": ${lastLines(tarErr, 3)}`);
    }
    if (!dockerOut.success) {
      throw new OpsError(
        `Cannot import "${ref}": ${lastLines(new TextDecoder().decode(dockerOut.stderr), 3)}`,
      );
    }
  }

  /** `docker stack deploy` with local images only. */
  async stackDeploy(stack: string, composeFile: string): Promise<void> {
    await this.#run([
      "stack",
      "deploy",
      "--resolve-image",
      "never",
      "--prune",
      "--detach=true",
      "--compose-file",
      composeFile,
      stack,
    ]);
  }

  /** `docker stack rm`; returns immediately, Swarm removes in the background. */
  async stackRemove(stack: string): Promise<void> {
    await this.#run(["stack", "rm", stack], { check: false });
  }

  /** The stack's services, each with its tasks (Engine API). */
  services(stack: string): Promise<SwarmService[]> {
    return this.#engine.services(stack);
  }

  /** The Swarm's nodes, this engine's first (Engine API). */
  async nodes(): Promise<SwarmNode[]> {
    const info = await this.info();
    return await this.#engine.nodes(info.nodeId);
  }

  /** Adds labels to a node, keeping its others (Engine API, at the version read). */
  async nodeLabels(node: string, labels: Readonly<Record<string, string>>): Promise<void> {
    await this.#engine.updateNode(node, (spec) => ({
      ...spec,
      Labels: { ...spec.Labels, ...labels },
    }));
  }

  /** Sets a node's availability: active, pause or drain (Engine API, at the version read). */
  async nodeAvailability(node: string, availability: "active" | "pause" | "drain"): Promise<void> {
    await this.#engine.updateNode(node, (spec) => ({ ...spec, Availability: availability }));
  }

  /**
   * Pushes a local image to its registry and returns the reference pinned by digest
   * (`host:port/name:tag@sha256:…`), which every node pulls and verifies.
   */
  async push(ref: string): Promise<string> {
    await this.#run(["push", "--quiet", ref]);
    const result = await this.#run(["image", "inspect", "--format", "{{json .RepoDigests}}", ref]);
    const digests = (parseJsonLine(result.stdout) ?? []) as string[];
    const repository = ref.slice(0, ref.lastIndexOf(":"));
    const pinned = digests.find((digest) => digest.startsWith(`${repository}@`));
    if (!pinned) {
      throw new OpsError(`Pushed "${ref}" but the engine reports no digest for it`, {
        code: "PUSH_FAILED",
      });
    }
    return `${ref}${pinned.slice(repository.length)}`;
  }

  /** The service labels of the stack's services, by Swarm name (`<stack>_<service>`). */
  serviceLabels(stack: string): Promise<Record<string, Record<string, string>>> {
    return this.#engine.serviceLabels(stack);
  }

  /** Sets replica counts by Swarm service name, without waiting (Engine API). */
  scale(replicas: Record<string, number>): Promise<void> {
    return this.#engine.scale(replicas);
  }

  /** `docker service update --detach <args> <service>`. */
  async serviceUpdate(service: string, args: readonly string[]): Promise<void> {
    await this.#run(["service", "update", "--detach", ...args, service]);
  }

  /** `docker service rollback --detach <service>`. */
  async serviceRollback(service: string): Promise<void> {
    await this.#run(["service", "rollback", "--detach", service]);
  }

  /** Streams the logs of every task of a service, one call of `onLine` per line. */
  async serviceLogs(service: string, options: LogsOptions): Promise<void> {
    const args = ["service", "logs", "--no-trunc", "--timestamps"];
    if (options.follow) args.push("--follow");
    if (options.since) args.push("--since", options.since);
    args.push(service);
    await this.#run(args, {
      onStdoutLine: options.onLine,
      onStderrLine: options.onLine,
      signal: options.signal,
    });
  }

  /** The log of one container, with timestamps, stdout and stderr (Engine API). */
  containerLogs(container: string, since?: string): Promise<string[]> {
    return this.#engine.containerLogs(container, since);
  }

  /** Runs a container to completion and returns its output (`docker run --rm`). */
  async run(options: RunContainerOptions): Promise<CommandResult> {
    const args = ["run", "--rm"];
    if (options.network) args.push("--network", options.network);
    if (options.name) args.push("--name", options.name);
    for (const [key, value] of Object.entries(options.env ?? {})) {
      args.push("--env", `${key}=${value}`);
    }
    for (const [key, value] of Object.entries(options.labels ?? {})) {
      args.push("--label", `${key}=${value}`);
    }
    for (const [key, value] of Object.entries(options.sysctls ?? {})) {
      args.push("--sysctl", `${key}=${value}`);
    }
    for (const [target, source] of Object.entries(options.files ?? {})) {
      args.push("--mount", `type=bind,source=${source},target=${target},readonly`);
    }
    if (options.user) args.push("--user", options.user);
    if (options.unprivileged) args.push("--read-only", "--cap-drop", "ALL");
    args.push(options.image, ...options.args);
    return await this.#run(args, { check: false, onStderrLine: options.onStderrLine });
  }

  /** Containers (running or not) carrying a label, by ID. */
  async containers(label: string): Promise<string[]> {
    return await this.#ids(["container", "ls", "--all", "--quiet", "--filter", `label=${label}`]);
  }

  /** Networks carrying a label, by name. */
  networks(label: string): Promise<string[]> {
    return this.#namesByLabel("network", label);
  }

  /** `docker network rm`; whether it was removed (a network still in use is not). */
  async networkRemove(name: string): Promise<boolean> {
    const result = await this.#run(["network", "rm", name], { check: false });
    return result.code === 0;
  }

  /** Volumes of this engine carrying a label (every volume without one), by name. */
  async volumes(label?: string): Promise<string[]> {
    const filter = label === undefined ? [] : ["--filter", `label=${label}`];
    const result = await this.#run(["volume", "ls", "--quiet", ...filter]);
    return splitLines(result.stdout);
  }

  /**
   * Empties named volumes on every node of the Swarm: a global one-shot service mounts them and
   * removes their content, then goes. The engine API removes a volume only on the engine it is
   * asked; a node's volumes are that node's own. Waits up to `timeoutMs`.
   */
  async wipeVolumesEverywhere(
    service: string,
    image: string,
    volumes: readonly string[],
    timeoutMs: number,
  ): Promise<void> {
    if (volumes.length === 0) return;
    await this.#run(["service", "rm", service], { check: false });
    const args = [
      "service",
      "create",
      "--detach",
      "--quiet",
      "--name",
      service,
      "--mode",
      "global",
      "--restart-condition",
      "none",
      "--entrypoint",
      "sh",
      // The image's own user (uid 10001) may not remove what other users wrote in the volumes.
      "--user",
      "0:0",
    ];
    volumes.forEach((volume, index) => {
      args.push("--mount", `type=volume,source=${volume},target=/wipe/${index}`);
    });
    args.push(image, "-c", "rm -rf /wipe/*/* /wipe/*/.[!.]* 2>/dev/null; exit 0");
    await this.#run(args);
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const result = await this.#run([
          "service",
          "ps",
          "--format",
          "{{.DesiredState}} {{.CurrentState}}",
          service,
        ], { check: false });
        const lines = splitLines(result.stdout);
        const done = lines.length > 0 &&
          lines.every((line) =>
            /^(Shutdown|Complete)\b/.test(line) ||
            /\b(Complete|Failed|Rejected|Shutdown)\b/.test(line)
          );
        if (done) return;
        if (Date.now() > deadline) {
          throw new OpsError(`Timed out emptying the volumes ${volumes.join(", ")} on every node`, {
            code: "TIMEOUT",
          });
        }
        await delay(500);
      }
    } finally {
      await this.#run(["service", "rm", service], { check: false });
      // Its stopped containers hold the volumes until Swarm has removed them.
      const label = `com.docker.swarm.service.name=${service}`;
      for (let waited = 0; waited < 30_000; waited += 250) {
        if ((await this.containers(label)).length === 0) break;
        await delay(250);
      }
    }
  }

  /** Where a volume of this engine keeps its files; `undefined` when it does not exist. */
  async volumeMountpoint(name: string): Promise<string | undefined> {
    const result = await this.#run(
      ["volume", "inspect", "--format", "{{.Mountpoint}}", name],
      { check: false },
    );
    return result.code === 0 ? result.stdout.trim() || undefined : undefined;
  }

  /**
   * Gives every file of a volume to `uid`:`uid`, with a one-shot container of `image` running as
   * root (`chown -R`): for a volume written by a program that ran as root before.
   */
  async chownVolume(name: string, image: string, uid: number): Promise<void> {
    await this.#run([
      "run",
      "--rm",
      "--network",
      "none",
      "--user",
      "0:0",
      "--mount",
      `type=volume,source=${name},target=/volume`,
      "--entrypoint",
      "chown",
      image,
      "-R",
      `${uid}:${uid}`,
      "/volume",
    ]);
  }

  /** Removes volumes by name. */
  async removeVolumes(names: readonly string[]): Promise<void> {
    if (names.length > 0) await this.#run(["volume", "rm", ...names]);
  }

  /** Whether a Swarm secret of that name exists (Engine API). */
  async secretExists(name: string): Promise<boolean> {
    return (await this.#engine.secretId(name)) !== undefined;
  }

  /** Creates a Swarm secret; the value goes in the API request's body, never in arguments or logs. */
  createSecret(
    name: string,
    value: Uint8Array,
    labels: Record<string, string> = {},
  ): Promise<void> {
    return this.#engine.createSecret(name, value, labels);
  }

  /** Swarm secrets carrying a label, by name (Engine API). */
  secrets(label: string): Promise<string[]> {
    return this.#engine.secretNames(label);
  }

  /** Removes secrets by name; a secret still in use stays and is an error (Engine API). */
  removeSecrets(names: readonly string[]): Promise<void> {
    return this.#engine.removeSecrets(names);
  }

  /** Sends a signal to a container (default SIGKILL). */
  async kill(container: string, signal = "KILL"): Promise<void> {
    await this.#run(["kill", "--signal", signal, container]);
  }

  async #namesByLabel(kind: "network", label: string): Promise<string[]> {
    const result = await this.#run([
      kind,
      "ls",
      "--format",
      "{{.Name}}",
      "--filter",
      `label=${label}`,
    ]);
    return splitLines(result.stdout);
  }

  async #ids(args: readonly string[], tolerant = false): Promise<string[]> {
    const result = await this.#run(args, { check: !tolerant });
    return splitLines(result.stdout);
  }
}

function splitLines(text: string): string[] {
  return text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
}

function parseJsonLine(text: string): unknown {
  try {
    return JSON.parse(text.trim());
  } catch {
    return undefined;
  }
}
