/** `deploy`: checks Docker and the Swarm, builds, deploys the stack, waits for agreement. */
import type { Command } from "commander";
import { CLUSTER_REGISTRY, ensurePlatformRegistry } from "../adapters/registry.ts";
import { OpsError, UsageError } from "../errors.ts";
import {
  CONSUL_SERVER_LABEL,
  consulServerCount,
  planNodeLabels,
  type SwarmNode,
} from "../plan/nodes.ts";
import { describeDeployAction, planDeploy } from "../plan/deploy.ts";
import { ALL_SERVICES, OPTIONAL_SERVICES, withOptional } from "../plan/services.ts";
import { SECRET_LABEL, sessionKeySecretName } from "../plan/secrets.ts";
import { type FileText, mcpTokenPath, planFrontDoorSecrets } from "../plan/front_door_secrets.ts";
import { renderStack, stackVolumeNames } from "../render/stack.ts";
import type { SwarmService } from "../plan/state.ts";
import type { PruneAction } from "../plan/prune.ts";

/** The service label that pauses the autoscaler for a service (`autoscale pause`). */
const AUTOSCALE_PAUSED_LABEL = "platform.autoscale.paused";
import { formatStatusTable } from "../render/status_table.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { ensureImages } from "./_images.ts";
import {
  describeMcpEndpoint,
  frontDoorAuth,
  keptStatsAuthFile,
  mcpUrl,
  readSnapshot,
  statsUrl,
} from "./_state.ts";
import { removeStaleRegistrations } from "./prune.ts";
import { waitForAgreement } from "./_wait.ts";
import {
  applyConsulAcls,
  type ConsulSecrets,
  createMissingSecrets,
  ensureConsulSecrets,
  managementTokenFile,
} from "./_consul_secrets.ts";
import {
  fileOwner,
  readOptionalTextFile,
  readTextFile,
  writeSecretFile,
  writeTextFile,
} from "../adapters/files.ts";

/** Options of `deploy`. */
export interface DeployFlags {
  dryRun?: boolean;
  /** A registry every node pulls from (`host:port`); needed on more than one node. */
  registry?: string;
  /** Optional services to deploy too (`--with conformance-server`). */
  with?: string[];
  /** commander's `--no-auth`: false when given. The routers then take calls without credentials. */
  auth?: boolean;
}

const REGISTRY_ADDRESS = /^[A-Za-z0-9.-]+(:\d{1,5})?$/;

/** The engine's socket as the autoscaler mounts it (stack.yml). */
const DOCKER_SOCKET = "/var/run/docker.sock";
/** The user every platform image runs as (services/Dockerfile and the others). */
const PLATFORM_UID = 10001;

/**
 * The stack's volumes on this engine that a program running as root wrote (a stack deployed before
 * its images ran as uid 10001) are given to uid 10001 once, before the new tasks start: Consul and
 * Prometheus would otherwise fail on their own data. Other nodes' volumes are theirs to fix (the
 * Consul entry point says how).
 */
async function handOverVolumes(context: CommandContext, image: string): Promise<void> {
  const { config, docker, progress } = context;
  const template = await readTextFile(`${config.root}/stack.yml`);
  for (const volume of stackVolumeNames(template, config.stack)) {
    const mountpoint = await docker.volumeMountpoint(volume);
    const owner = mountpoint === undefined ? undefined : (await fileOwner(mountpoint))?.uid;
    if (owner === undefined || owner === PLATFORM_UID) continue;
    progress.log(`giving the volume ${volume} (owned by uid ${owner}) to uid ${PLATFORM_UID}`);
    await docker.chownVolume(volume, image, PLATFORM_UID);
  }
}

/**
 * On more than one node, the images go to a registry every node can pull from, and the stack
 * names them there, pinned by digest. Returns the image of each service to deploy.
 */
async function publishImages(
  context: CommandContext,
  images: Readonly<Record<string, string>>,
  registry: string | undefined,
): Promise<Record<string, string>> {
  if (registry === undefined) return { ...images };
  const { docker, progress } = context;
  const target = registry === CLUSTER_REGISTRY
    ? await ensurePlatformRegistry({
      root: context.config.root,
      log: (line) => progress.log(line),
      sleep: context.sleep,
    })
    : registry;
  const pinned = new Map<string, string>();
  const started = context.now();
  for (const ref of new Set(Object.values(images))) {
    const remote = `${target}/${ref}`;
    await docker.tag(ref, remote);
    progress.update(`pushing ${remote}`);
    pinned.set(ref, await docker.push(remote));
  }
  progress.done();
  progress.log(
    `pushed ${pinned.size} images to ${target} in ${
      ((context.now() - started) / 1000).toFixed(1)
    }s`,
  );
  return Object.fromEntries(
    Object.entries(images).map(([service, ref]) => [service, pinned.get(ref)!]),
  );
}

/** The autoscaler's pause label of each service that has it, to carry over a deploy. */
function pausedLabels(actual: readonly SwarmService[]): Record<string, Record<string, string>> {
  const kept: Record<string, Record<string, string>> = {};
  for (const service of actual) {
    const paused = service.labels?.[AUTOSCALE_PAUSED_LABEL];
    if (paused !== undefined) kept[service.name] = { [AUTOSCALE_PAUSED_LABEL]: paused };
  }
  return kept;
}

/** Labels the nodes so the stack can be placed (Consul servers, edge nodes); returns the servers. */
async function placeOnNodes(
  context: CommandContext,
  nodes: readonly SwarmNode[],
  dryRun: boolean,
): Promise<number> {
  const changes = planNodeLabels(nodes);
  for (const change of changes) {
    const labels = Object.entries(change.add).map(([key, value]) => `${key}=${value}`).join(" ");
    context.progress.log(
      `${dryRun ? "would label" : "labelling"} node "${change.node}": ${labels} (${change.why})`,
    );
    if (!dryRun) await context.docker.nodeLabels(change.id, change.add);
  }
  const servers = consulServerCount(nodes, changes);
  if (servers % 2 === 0) {
    context.progress.log(
      `warning: ${servers} nodes are labelled ${CONSUL_SERVER_LABEL}=server: an even number of ` +
        "Consul servers tolerates no more failures than one fewer",
    );
  }
  return servers;
}

/**
 * Makes sure a Docker engine answers and is a Swarm manager; initialises a one-node Swarm (with
 * `dryRun`, only says so). Returns whether the engine is in a Swarm now.
 */
export async function ensureSwarm(
  context: CommandContext,
  options: { dryRun?: boolean } = {},
): Promise<boolean> {
  const info = await context.docker.info();
  if (info.swarmState === "inactive") {
    if (options.dryRun) {
      context.progress.log("Swarm is inactive: would initialise a single-node Swarm");
      return false;
    }
    context.progress.log("Swarm is inactive: initialising a single-node Swarm");
    await context.docker.swarmInit();
    return true;
  }
  if (info.swarmState !== "active") {
    throw new OpsError(`Swarm is "${info.swarmState}" on this engine: it must be active`, {
      code: "SWARM_NOT_ACTIVE",
    });
  }
  if (!info.isManager) {
    throw new OpsError("This engine is a Swarm worker: run the ops tool on a manager", {
      code: "SWARM_NOT_MANAGER",
    });
  }
  return true;
}

/** The secret names the stack file is rendered with. */
interface StackSecrets {
  sessionKey: string;
  statsAuth: string;
  /** Undefined with `--no-auth`. */
  mcpTokens: string | undefined;
}

/**
 * The secrets the stack needs: made when missing, never printed. The front door's credentials
 * come from the operator's files, else from the kept ones, else they are made and kept for the
 * user (said once, when the file is written). Returns their names.
 */
async function ensureSecrets(
  context: CommandContext,
  consulSecrets: ConsulSecrets,
  options: { noAuth: boolean },
): Promise<StackSecrets> {
  const { config, docker, progress } = context;
  const labels = { [SECRET_LABEL]: config.stack };
  const sessionKey = sessionKeySecretName(config.stack);
  if (!(await docker.secretExists(sessionKey))) {
    progress.log(`creating secret "${sessionKey}" (a random 32-byte session key for the routers)`);
    const key = crypto.getRandomValues(new Uint8Array(32));
    const text = btoa(String.fromCharCode(...key));
    await docker.createSecret(sessionKey, new TextEncoder().encode(text), labels);
  }
  const given = async (file: string | undefined): Promise<FileText | undefined> =>
    file === undefined ? undefined : { file, text: await readTextFile(file) };
  const kept = async (file: string): Promise<FileText | undefined> => {
    const text = await readOptionalTextFile(file);
    return text === undefined ? undefined : { file, text };
  };
  let plan;
  try {
    plan = planFrontDoorSecrets({
      stack: config.stack,
      noAuth: options.noAuth,
      derived: consulSecrets,
      givenTokens: await given(config.mcpTokensFile),
      givenStatsAuth: await given(config.statsAuthFile),
      keptToken: await kept(`${config.root}/${mcpTokenPath(config.stack)}`),
      keptStatsAuth: await kept(keptStatsAuthFile(context)),
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  for (const file of plan.files) {
    await writeSecretFile(`${config.root}/${file.path}`, file.text);
    progress.log(file.note);
  }
  await createMissingSecrets(context, [
    ...(plan.mcpTokens
      ? [{ ...plan.mcpTokens, what: "the bearer tokens the MCP routers accept" }]
      : []),
    { ...plan.statsAuth, what: "HAProxy stats credentials" },
  ]);
  return { sessionKey, statsAuth: plan.statsAuth.name, mcpTokens: plan.mcpTokens?.name };
}

/** Runs `deploy`. */
export async function deployCommand(
  defaults: CommandContext,
  flags: DeployFlags,
): Promise<void> {
  // Optional services asked for join every step below: images, plan, stack file, agreement.
  const chosen = withOptional(flags.with ?? [], [...defaults.services, ...OPTIONAL_SERVICES]);
  const context: CommandContext = { ...defaults, services: chosen };
  const omit = ALL_SERVICES.filter((service) => !chosen.includes(service))
    .map((service) => service.name);
  const { config, docker, progress } = context;
  const started = context.now();
  const inSwarm = await ensureSwarm(context, { dryRun: flags.dryRun });
  const images = await ensureImages(context, { dryRun: flags.dryRun });
  const imageByService: Record<string, string> = {
    consul: images.consul,
    "consul-agent": images.consul,
    lb: images.lb,
    prometheus: images.prometheus,
    ...images.perService,
  };
  if (flags.registry !== undefined && !REGISTRY_ADDRESS.test(flags.registry)) {
    throw new UsageError(`--registry must be HOST:PORT, got "${flags.registry}"`);
  }
  // A dry run on an engine in no Swarm plans for the one-node Swarm deploy would make.
  const nodes = inSwarm ? await docker.nodes() : [];
  const consulServers = inSwarm ? await placeOnNodes(context, nodes, flags.dryRun ?? false) : 1;
  if (nodes.length > 1 || flags.registry !== undefined) {
    progress.log(
      `${nodes.length} nodes: images ${flags.dryRun ? "would be" : "are"} pushed to ${
        flags.registry ?? "the platform's registry"
      }`,
    );
  }
  const registry = nodes.length > 1 ? flags.registry ?? CLUSTER_REGISTRY : flags.registry;
  const planned = registry === undefined ? imageByService : Object.fromEntries(
    Object.entries(imageByService).map(([service, ref]) => [service, `${registry}/${ref}`]),
  );
  const actual = inSwarm ? await docker.services(config.stack) : [];
  const actions = planDeploy(context.services, planned, actual);
  for (const action of actions) progress.log(describeDeployAction(action));
  const consulUi = `http://127.0.0.1:${config.consulPort}/ui/`;
  const urls = {
    consulUi,
    mcp: mcpUrl(context),
    stats: statsUrl(context),
    prometheus: config.prometheusUrl,
  };
  if (flags.dryRun) {
    context.result({ stack: config.stack, dryRun: true, actions }, "dry run: nothing deployed");
    return;
  }

  const deployed = await publishImages(context, imageByService, registry);
  await handOverVolumes(context, images.consul);
  const noAuth = flags.auth === false;
  if (noAuth) {
    progress.log(
      `warning: --no-auth: the MCP endpoint ${urls.mcp} takes calls from anyone who reaches it`,
    );
  }
  const consulSecrets = await ensureConsulSecrets(context);
  const secrets = await ensureSecrets(context, consulSecrets, { noAuth });
  const template = await readTextFile(`${config.root}/stack.yml`);
  const replicas = Object.fromEntries(
    actions.filter((action) => action.replicas !== undefined)
      .map((action) => [action.service, action.replicas!]),
  );
  const rendered = renderStack(template, {
    vars: {
      CONSUL_PUBLISHED_PORT: String(config.consulPort),
      LB_PUBLISHED_PORT: String(config.mcpPort),
      LB_STATS_PUBLISHED_PORT: String(config.statsPort),
      ROUTER_SESSION_KEY_SECRET: secrets.sessionKey,
      ...(secrets.mcpTokens === undefined ? {} : { MCP_TOKENS_SECRET: secrets.mcpTokens }),
      // Consul's secrets are `<stack>_consul-…` (ops/plan/consul_secrets.ts).
      SECRET_PREFIX: config.stack,
      CONSUL_SERVERS: String(consulServers),
      CONSUL_LEAVE_ON_TERMINATE: String(consulServers > 1),
      PROMETHEUS_PUBLISHED_PORT: String(config.prometheusPort),
      // The autoscaler's group: the one that owns the engine's socket it mounts (stack.yml).
      DOCKER_SOCKET_GID: String((await fileOwner(DOCKER_SOCKET))?.gid ?? 0),
      ...config.lbLimits,
    },
    images: deployed,
    replicas,
    statsAuthSecret: secrets.statsAuth,
    noAuth,
    // A deploy sets the labels the file declares: a pause of the autoscaler must survive it.
    keepLabels: pausedLabels(actual),
    omit,
  });
  const file = `${config.buildDir}/stack.${config.stack}.yml`;
  await writeTextFile(file, rendered);
  progress.log(`deploying stack "${config.stack}"`);
  await docker.stackDeploy(config.stack, file);
  // The agents and programs retry until their tokens exist.
  await applyConsulAcls(context, consulSecrets);

  // For the routers, agreement includes HAProxy: every router UP there, nothing else UP.
  // Registrations no task of this stack owns (an earlier stack's, when Consul kept its data) go
  // while waiting: passing ghosts would keep the counts from agreeing.
  const ghosts: PruneAction[] = [];
  const agreed = await waitForAgreement(context, context.services, {
    what: `stack "${config.stack}" to run, pass in Consul and be UP in HAProxy`,
    removeGhosts: ghosts,
  });
  const removed = [...ghosts, ...await removeStaleRegistrations(context, agreed)];
  const snapshot = removed.length === 0 ? agreed : await readSnapshot(context);
  const seconds = Math.round((context.now() - started) / 100) / 10;
  context.result(
    {
      stack: config.stack,
      actions,
      services: snapshot.statuses,
      removedRegistrations: removed.map((action) => action.instanceId),
      urls,
      auth: frontDoorAuth(context, noAuth),
      seconds,
    },
    [
      formatStatusTable(snapshot.statuses),
      "",
      describeMcpEndpoint(context, noAuth),
      `HAProxy stats: ${urls.stats} (Prometheus: ${
        urls.stats.replace(/\/stats$/, "/metrics")
      }; user:password in "${context.config.statsAuthFile ?? keptStatsAuthFile(context)}")`,
      `Consul UI: ${consulUi} (log in with the management token in "${
        managementTokenFile(context)
      }")`,
      `Prometheus: ${urls.prometheus}`,
      `deployed stack "${config.stack}" in ${seconds.toFixed(1)}s`,
    ].join("\n"),
  );
}

/** Registers `deploy`. */
export function registerDeploy(program: Command, run: CommandRunner): void {
  program.command("deploy")
    .description("build the images, deploy the stack and wait until Swarm and Consul agree")
    .option("--dry-run", "show the plan and stop")
    .option(
      "--registry <host:port>",
      "registry every node pulls from (more than one node; default: the local cluster's own)",
    )
    .option(
      "--with <service...>",
      "deploy optional services too (conformance-server: the MCP conformance suite's fixtures)",
    )
    .option(
      "--no-auth",
      "serve MCP without credentials (default: clients send the bearer token in " +
        '".platform/secrets/mcp-token")',
    )
    .action((flags: DeployFlags) => run((context) => deployCommand(context, flags)));
}
