/** `scale <service> <n>`, `scale all <n>`, `scale down`: change replicas, wait for agreement. */
import type { Command } from "commander";
import { parseScaleArgs, planScale } from "../plan/scale.ts";
import { resolveService, swarmServiceName } from "../plan/services.ts";
import { formatStatusTable } from "../render/status_table.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { waitForAgreement } from "./_wait.ts";

/** Options of `scale`. */
export interface ScaleFlags {
  dryRun?: boolean;
}

/** Runs `scale`. */
export async function scaleCommand(
  context: CommandContext,
  target: string,
  count: string | undefined,
  flags: ScaleFlags,
): Promise<void> {
  const request = parseScaleArgs(target, count, context.services);
  const started = context.now();
  const actual = await context.docker.services(context.config.stack);
  const actions = planScale(request, actual);
  for (const action of actions) {
    context.progress.log(`${action.service}: ${action.from} -> ${action.to}`);
  }
  if (actions.length === 0) context.progress.log("every replica count is already as asked");
  if (flags.dryRun) {
    context.result({ dryRun: true, actions }, "dry run: nothing scaled");
    return;
  }
  if (actions.length > 0) {
    await context.docker.scale(Object.fromEntries(actions.map((action) => [
      swarmServiceName(context.config.stack, resolveService(action.service, context.services)),
      action.to,
    ])));
  }
  const services = request.targets.map((entry) => entry.service);
  const snapshot = await waitForAgreement(context, services, {
    what: services.map((service) => service.name).join(", "),
  });
  const seconds = Math.round((context.now() - started) / 100) / 10;
  const statuses = snapshot.statuses.filter((status) =>
    services.some((service) => service.name === status.service)
  );
  context.result(
    { actions, services: statuses, seconds },
    `${formatStatusTable(statuses)}\nscaled in ${seconds.toFixed(1)}s`,
  );
}

/** Registers `scale`. */
export function registerScale(program: Command, run: CommandRunner): void {
  program.command("scale")
    .description('set replicas: "scale <service> <n>", "scale all <n>", "scale down" (all to 1)')
    .argument("<service>", "echo, weather, itinerary, router, a full name, all, or down")
    .argument("[replicas]", "replica count")
    .option("--dry-run", "show the plan and stop")
    .action((target: string, count: string | undefined, flags: ScaleFlags) =>
      run((context) => scaleCommand(context, target, count, flags))
    );
}
