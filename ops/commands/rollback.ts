/** `rollback <service>`: `docker service rollback`, then wait until Swarm and Consul agree. */
import type { Command } from "commander";
import { OpsError } from "../errors.ts";
import { resolveService } from "../plan/services.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { findService, followRollout } from "./_rollout.ts";
import { waitForAgreement } from "./_wait.ts";

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
  const snapshot = await waitForAgreement(context, [service], { what: `"${service.name}"` });
  const after = snapshot.swarm.find((entry) => entry.name === service.name);
  const seconds = Math.round((context.now() - started) / 100) / 10;
  context.result(
    {
      service: service.name,
      outcome: rollout.outcome,
      image: after?.image,
      events: rollout.events,
      seconds,
    },
    `rolled back ${service.name} to ${after?.image} in ${seconds.toFixed(1)}s`,
  );
}

/** Registers `rollback`. */
export function registerRollback(program: Command, run: CommandRunner): void {
  program.command("rollback")
    .description("return a service to its previous spec, then wait for agreement")
    .argument("<service>", "echo, weather, itinerary, router, lb, consul or a full name")
    .action((name: string) => run((context) => rollbackCommand(context, name)));
}
