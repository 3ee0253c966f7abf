/**
 * `drain <node>` / `activate <node>`: take a node out of service or back, through Swarm's
 * availability, and wait until Swarm, Consul and HAProxy agree again.
 */
import type { Command } from "commander";
import { OpsError, UsageError } from "../errors.ts";
import {
  findNode,
  isConsulServer,
  nodePlacement,
  type SwarmNode,
  tasksOnNode,
} from "../plan/nodes.ts";
import { formatNodeTable } from "../render/node_table.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { waitForAgreement } from "./_wait.ts";

const POLL_MS = 1_000;

/** The node a command names, by hostname as `docker node ls` shows it. */
export async function resolveNode(context: CommandContext, name: string): Promise<SwarmNode> {
  const info = await context.docker.info();
  if (info.swarmState !== "active") {
    throw new OpsError("This engine is in no Swarm: there are no nodes", { code: "NO_SWARM" });
  }
  const nodes = await context.docker.nodes();
  const node = findNode(nodes, name);
  if (!node) {
    throw new UsageError(
      `Unknown node "${name}": the nodes are ${nodes.map((entry) => entry.hostname).join(", ")}`,
    );
  }
  return node;
}

/** Runs `drain <node>`: its tasks move to other nodes, then everything agrees again. */
export async function drainCommand(context: CommandContext, name: string): Promise<void> {
  const started = context.now();
  const node = await resolveNode(context, name);
  if (node.self) {
    throw new UsageError(
      `Cannot drain "${node.hostname}": the ops tool reaches Consul and the MCP port through this ` +
        "node; drain it from another manager",
    );
  }
  // Swarm stops a drained node's tasks before their replacements run elsewhere: a service whose
  // every instance is there has none while it moves.
  for (const service of await context.docker.services(context.config.stack)) {
    if (service.global) continue;
    const running = service.tasks.filter((task) =>
      task.desiredState === "running" && task.state === "running"
    );
    if (running.length > 0 && running.every((task) => task.nodeId === node.id)) {
      context.progress.log(
        `warning: every instance of "${service.name}" runs on "${node.hostname}": it has none ` +
          "until Swarm starts them elsewhere (scale it to 2 or more first to avoid the gap)",
      );
    }
  }
  context.progress.log(`draining node "${node.hostname}"`);
  await context.docker.nodeAvailability(node.id, "drain");
  // Swarm stops each task there (its instance deregisters and drains first) and starts a
  // replacement elsewhere; the node is empty when none of the stack's tasks is left on it.
  const deadline = started + context.config.timeoutSeconds * 1000;
  for (;;) {
    const swarm = await context.docker.services(context.config.stack);
    const [here] = nodePlacement([node], swarm);
    const left = tasksOnNode(here);
    context.progress.update(`${node.hostname}: ${left} tasks of the stack left`);
    if (left === 0) break;
    if (context.now() > deadline) {
      context.progress.done();
      throw new OpsError(
        `Timed out after ${context.config.timeoutSeconds}s draining "${node.hostname}": ${left} tasks left`,
        { code: "TIMEOUT" },
      );
    }
    await context.sleep(POLL_MS);
  }
  context.progress.done();
  // A Consul server belongs to its node (one per node, its data there): it waits for the node.
  const waitFor = context.services.filter((service) =>
    !(isConsulServer(node) && service.name === "consul")
  );
  await waitForAgreement(context, waitFor, {
    what: `the stack to agree again without node "${node.hostname}"`,
  });
  await report(context, node.hostname, "drained", started);
}

/** Runs `activate <node>`: the node takes tasks again; waits until everything agrees. */
export async function activateCommand(context: CommandContext, name: string): Promise<void> {
  const started = context.now();
  const node = await resolveNode(context, name);
  context.progress.log(`activating node "${node.hostname}"`);
  await context.docker.nodeAvailability(node.id, "active");
  await waitForAgreement(context, context.services, {
    what: `the stack to agree again with node "${node.hostname}" active`,
  });
  await report(context, node.hostname, "activated", started);
}

async function report(
  context: CommandContext,
  node: string,
  verb: string,
  started: number,
): Promise<void> {
  const swarm = await context.docker.services(context.config.stack);
  const nodes = nodePlacement(await context.docker.nodes(), swarm);
  const names = context.services.map((service) => service.name)
    .filter((name) => swarm.some((service) => service.name === name));
  const seconds = Math.round((context.now() - started) / 100) / 10;
  context.result(
    { node, action: verb, seconds, nodes },
    `${formatNodeTable(nodes, names)}\n${verb} node "${node}" in ${seconds.toFixed(1)}s`,
  );
}

/** Registers `drain` and `activate`. */
export function registerNode(program: Command, run: CommandRunner): void {
  program.command("drain")
    .description("move every task off a node (docker node update --availability drain) and wait")
    .argument("<node>", "the node's hostname, as docker node ls shows it")
    .action((name: string) => run((context) => drainCommand(context, name)));
  program.command("activate")
    .description("let a drained node take tasks again and wait until everything agrees")
    .argument("<node>", "the node's hostname, as docker node ls shows it")
    .action((name: string) => run((context) => activateCommand(context, name)));
}
