/** `prune`: removes Consul registrations that belong to no live Swarm task. */
import type { Command } from "commander";
import { planPrune } from "../plan/prune.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { readSnapshot } from "./_state.ts";

/** Options of `prune`. */
export interface PruneFlags {
  dryRun?: boolean;
}

/** Runs `prune`. */
export async function pruneCommand(context: CommandContext, flags: PruneFlags): Promise<void> {
  const snapshot = await readSnapshot(context);
  if (!snapshot.consulReachable) {
    // Reading Consul again gives the precise reason.
    await context.consul.instances(["consul"]);
  }
  const actions = planPrune(context.services, snapshot.swarm, snapshot.instances);
  if (!flags.dryRun) {
    for (const action of actions) {
      await context.consul.deregister(action.instanceId);
      context.progress.log(`removed ${action.instanceId} (${action.service}, ${action.status})`);
    }
  }
  const verb = flags.dryRun ? "would remove" : "removed";
  context.result(
    { dryRun: flags.dryRun ?? false, removed: actions },
    actions.length === 0
      ? "no stale registration"
      : actions.map((action) =>
        `${verb} ${action.instanceId} (${action.service}, ${action.status})`
      )
        .join("\n"),
  );
}

/** Registers `prune`. */
export function registerPrune(program: Command, run: CommandRunner): void {
  program.command("prune")
    .description("remove Consul registrations that belong to no running task")
    .option("--dry-run", "show what would be removed")
    .action((flags: PruneFlags) => run((context) => pruneCommand(context, flags)));
}
