/** `update <service>`: a rolling update per the stack's update_config; a rollback is a failure. */
import type { Command } from "commander";
import { OpsError } from "../errors.ts";
import { resolveService } from "../plan/services.ts";
import { parseEnvAssignments, planUpdateArgs } from "../plan/update.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { findService, followRollout, reportRollout } from "./_rollout.ts";
import { waitForAgreement } from "./_wait.ts";

/** Options of `update`. */
export interface UpdateFlags {
  image?: string;
  env?: string[];
  force?: boolean;
  dryRun?: boolean;
}

/** Runs `update`. */
export async function updateCommand(
  context: CommandContext,
  name: string,
  flags: UpdateFlags,
): Promise<void> {
  const service = resolveService(name, context.services);
  const args = planUpdateArgs({
    image: flags.image,
    env: parseEnvAssignments(flags.env ?? []),
    force: flags.force ?? false,
  });
  const started = context.now();
  const before = await findService(context, service.name);
  context.progress.log(`docker service update ${args.join(" ")} ${before.fullName}`);
  if (flags.dryRun) {
    context.result({ dryRun: true, service: service.name, args }, "dry run: nothing updated");
    return;
  }
  await context.docker.serviceUpdate(before.fullName, args);
  const rollout = await followRollout(context, before);
  if (rollout.outcome === "rolled-back" || rollout.outcome === "paused") {
    // The service should be back on its previous spec; say whether it serves again.
    let serving = "";
    try {
      await waitForAgreement(context, [service], { what: `"${service.name}" after the rollback` });
      serving = "; the previous version runs and passes in Consul";
    } catch (error) {
      serving = `; and it is not back to normal: ${(error as Error).message}`;
    }
    const verb = rollout.outcome === "rolled-back" ? "rolled back" : "paused";
    throw new OpsError(
      `Swarm ${verb} the update of "${service.name}": ${
        rollout.taskError ? `a new task failed (${rollout.taskError})` : rollout.message
      }${serving}`,
      { code: rollout.outcome === "rolled-back" ? "ROLLED_BACK" : "UPDATE_PAUSED" },
    );
  }
  await reportRollout(context, service, rollout, { started, verb: "updated" });
}

/** Registers `update`. */
export function registerUpdate(program: Command, run: CommandRunner): void {
  program.command("update")
    .description("rolling update of a service (start-first, rolled back by Swarm on failure)")
    .argument("<service>", "echo, weather, itinerary, router, lb, consul or a full name")
    .option("--image <image>", "run this image")
    .option("--env <KEY=VALUE>", "set an environment variable (repeatable)", collect, [])
    .option("--force", "replace every task even when nothing changed")
    .option("--dry-run", "show the update and stop")
    .action((name: string, flags: UpdateFlags) =>
      run((context) => updateCommand(context, name, flags))
    );
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
