/** `status`: Swarm's and Consul's view of every service, and where they disagree. */
import type { Command } from "commander";
import { formatStatusTable } from "../render/status_table.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { readSnapshot } from "./_state.ts";

/** Runs `status`. */
export async function statusCommand(context: CommandContext): Promise<void> {
  await context.docker.info();
  const snapshot = await readSnapshot(context);
  const deployed = snapshot.swarm.length > 0;
  const agreed = deployed && snapshot.statuses.every((status) => status.converged);
  const text = deployed
    ? formatStatusTable(snapshot.statuses) +
      (snapshot.consulReachable ? "" : `\n! Consul does not answer at ${context.config.consulUrl}`)
    : `stack "${context.config.stack}" is not deployed`;
  context.result(
    {
      stack: context.config.stack,
      deployed,
      consulReachable: snapshot.consulReachable,
      agreed,
      services: snapshot.statuses,
    },
    text,
  );
}

/** Registers `status`. */
export function registerStatus(program: Command, run: CommandRunner): void {
  program.command("status")
    .description("show each service as Swarm and Consul see it, flagging disagreement")
    .action(() => run((context) => statusCommand(context)));
}
