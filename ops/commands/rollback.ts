/** `rollback <service>`: `docker service rollback`, then wait until Swarm and Consul agree. */
import type { Command } from "commander";
import { OpsError } from "../errors.ts";
import { resolveService } from "../plan/services.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { findService, followRollout, reportRollout } from "./_rollout.ts";

/** Runs `rollback`. */
export async function rollbackCommand(context: CommandContext, name: string): Promise<void> {
  const service = resolveService(name, context.services);
  const started = context.now();
  const before = await findService(context, service.name);
  await context.docker.serviceRollback(before.fullName);
  const rollout = await followRollout(context, before);
  if (rollout.outcome === "paused") {
    throw new OpsError(`The rollback of "${service.name}" paused: ${rollout.message}`, {
      code: "ROLLBACK_PAUSED",
    });
  }
  await reportRollout(context, service, rollout, { started, verb: "rolled back" });
}

/** Registers `rollback`. */
export function registerRollback(program: Command, run: CommandRunner): void {
  program.command("rollback")
    .description("return a service to its previous spec, then wait for agreement")
    .argument("<service>", "echo, weather, itinerary, router, lb, consul or a full name")
    .action((name: string) => run((context) => rollbackCommand(context, name)));
}
