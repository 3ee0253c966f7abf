/** `prune`: removes Consul registrations that belong to no live Swarm task. */
import type { Command } from "commander";
import { planPrune, type PruneAction } from "../plan/prune.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { readSnapshot, type StackSnapshot } from "./_state.ts";

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
  const actions = flags.dryRun
    ? planPrune(context.services, snapshot.swarm, snapshot.instances)
    : await removeStaleRegistrations(context, snapshot);
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

/**
 * Removes the Consul registrations that belong to no live task of the stack in `snapshot` (ghosts
 * of killed tasks, or of an earlier stack when Consul's data outlived it); returns them.
 */
export async function removeStaleRegistrations(
  context: CommandContext,
  snapshot: StackSnapshot,
): Promise<readonly PruneAction[]> {
  return await removeRegistrations(
    context,
    planPrune(context.services, snapshot.swarm, snapshot.instances),
  );
}

/** Removes each registration of `actions` from the Consul node holding it; returns `actions`. */
export async function removeRegistrations(
  context: CommandContext,
  actions: readonly PruneAction[],
): Promise<readonly PruneAction[]> {
  for (const action of actions) {
    await context.consul.deregister(
      action.instanceId,
      action.node === undefined ? {} : { node: action.node },
    );
    context.progress.log(`removed ${action.instanceId} (${action.service}, ${action.status})`);
  }
  return actions;
}

/** Registers `prune`. */
export function registerPrune(program: Command, run: CommandRunner): void {
  program.command("prune")
    .description("remove Consul registrations that belong to no running task")
    .option("--dry-run", "show what would be removed")
    .action((flags: PruneFlags) => run((context) => pruneCommand(context, flags)));
}
