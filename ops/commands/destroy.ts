/** `destroy`: removes the stack and waits until its services, containers and networks are gone. */
import type { Command } from "commander";
import { DEFAULT_STACK } from "../config.ts";
import { OpsError } from "../errors.ts";
import { readTextFile, removeEmptyFolder, removeFile } from "../adapters/files.ts";
import { SECRET_LABEL } from "../plan/secrets.ts";
import { stackVolumeNames } from "../render/stack.ts";
import { managementTokenFile } from "./_consul_secrets.ts";
import type { CommandContext, CommandRunner } from "../context.ts";

/** Options of `destroy`. */
export interface DestroyFlags {
  volumes?: boolean;
}

/** Runs `destroy`. */
export async function destroyCommand(context: CommandContext, flags: DestroyFlags): Promise<void> {
  const { docker, config, progress } = context;
  const started = context.now();
  const info = await docker.info();
  if (info.swarmState !== "active") {
    // No Swarm, so no stack: nothing to remove (a fresh engine, or one that left its Swarm).
    context.result(
      {
        stack: config.stack,
        removedServices: [],
        removedVolumes: [],
        removedSecrets: [],
        seconds: 0,
      },
      `stack "${config.stack}" was not deployed (this engine is in no Swarm)`,
    );
    return;
  }
  const label = `com.docker.stack.namespace=${config.stack}`;
  const existing = await docker.services(config.stack);
  const services = existing.map((service) => service.fullName);
  // An image every node has (it ran there), with a shell: for emptying volumes on every node.
  const consulImage = existing.find((service) => service.name === "consul")?.image;
  await docker.stackRemove(config.stack);
  const deadline = started + config.timeoutSeconds * 1000;
  for (;;) {
    const networks = await docker.networks(label);
    const left = {
      services: (await docker.services(config.stack)).length,
      containers: (await docker.containers(label)).length,
      networks: networks.length,
    };
    progress.update(
      `waiting for removal: ${left.services} services, ${left.containers} containers, ${left.networks} networks`,
    );
    if (left.services + left.containers + left.networks === 0) break;
    if (left.services + left.containers === 0) {
      // `docker stack rm` asks once for each network, right after the services: a network whose
      // tasks were still stopping somewhere (a node slow to report, one just healed) stays
      // forever. Ask again now that nothing uses it.
      for (const network of networks) await docker.networkRemove(network);
    }
    if (context.now() > deadline) {
      progress.done();
      throw new OpsError(
        `Timed out after ${config.timeoutSeconds}s removing stack "${config.stack}": ` +
          `${left.services} services, ${left.containers} containers, ${left.networks} networks left`,
        { code: "TIMEOUT" },
      );
    }
    await context.sleep(1000);
  }
  progress.done();
  let volumes: string[] = [];
  let secrets: string[] = [];
  if (flags.volumes) {
    const nodes = await docker.nodes();
    const named = stackVolumeNames(await readTextFile(`${config.root}/stack.yml`), config.stack);
    if (nodes.length > 1 && consulImage) {
      // Each node keeps its own copy of a named volume (a Consul server's Raft data among them):
      // a later deploy must not meet an old cluster's state on a worker.
      progress.log(`emptying ${named.join(", ")} on ${nodes.length} nodes`);
      await docker.wipeVolumesEverywhere(
        `${config.stack}_wipe-volumes`,
        consulImage,
        named,
        120_000,
      );
    }
    const present = new Set(await docker.volumes());
    volumes = [
      ...new Set([...await docker.volumes(label), ...named.filter((n) => present.has(n))]),
    ];
    await docker.removeVolumes(volumes);
    // The session key and stats credentials are state too: kept otherwise, so sessions survive.
    secrets = await docker.secrets(`${SECRET_LABEL}=${config.stack}`);
    await docker.removeSecrets(secrets);
    // Consul's data is gone with its volume: its management token means nothing any more.
    const tokenFile = managementTokenFile(context);
    await removeFile(tokenFile);
    // Another stack's file has a folder of its own: removed once empty.
    if (config.stack !== DEFAULT_STACK) {
      await removeEmptyFolder(tokenFile.slice(0, tokenFile.lastIndexOf("/")));
    }
  }
  const seconds = Math.round((context.now() - started) / 100) / 10;
  context.result(
    {
      stack: config.stack,
      removedServices: services,
      removedVolumes: volumes,
      removedSecrets: secrets,
      seconds,
    },
    services.length === 0 && volumes.length === 0 && secrets.length === 0
      ? `stack "${config.stack}" was not deployed`
      : `removed stack "${config.stack}" (${services.length} services${
        flags.volumes
          ? `, ${volumes.length} volumes, ${secrets.length} secrets`
          : "; volumes and secrets kept"
      }) in ${seconds.toFixed(1)}s`,
  );
}

/** Registers `destroy`. */
export function registerDestroy(program: Command, run: CommandRunner): void {
  program.command("destroy")
    .description("remove the stack; volumes and secrets stay unless --volumes")
    .option("--volumes", "also remove the stack's volumes (Consul's data) and secrets")
    .action((flags: DestroyFlags) => run((context) => destroyCommand(context, flags)));
}
