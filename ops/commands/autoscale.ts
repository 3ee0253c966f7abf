/**
 * `autoscale status [service]`: each autoscaled service's policy, current metric, desired count
 * and why, from its labels and the autoscaler's status (Consul KV, written at each evaluation).
 * `autoscale pause|resume <service>`: sets or removes the label `platform.autoscale.paused`, so the
 * pause is part of the service and outlives autoscaler restarts.
 */
import type { Command } from "commander";
import { PAUSED_LABEL } from "../../services/autoscaler/policy.ts";
import { DEFAULT_STATUS_KEY } from "../../services/autoscaler/settings.ts";
import { parseStatusDocument, type StatusDocument } from "../../services/autoscaler/status.ts";
import { OpsError } from "../errors.ts";
import { planAutoscaleStatus } from "../plan/autoscale.ts";
import { resolveService, swarmServiceName } from "../plan/services.ts";
import { formatTable } from "../render/table.ts";
import type { CommandContext, CommandRunner } from "../context.ts";

/** Options of `autoscale pause|resume`. */
export interface AutoscalePauseFlags {
  dryRun?: boolean;
}

/** Each autoscaled service's policy, replicas, metric, desired count and why (status and `status`). */
export async function readAutoscaleStatus(
  context: CommandContext,
): Promise<ReturnType<typeof planAutoscaleStatus>> {
  const { config, docker, consul } = context;
  const [labels, services, raw] = await Promise.all([
    docker.serviceLabels(config.stack),
    docker.services(config.stack),
    consul.kvGet(DEFAULT_STATUS_KEY),
  ]);
  let document: StatusDocument | null = null;
  if (raw !== undefined) {
    try {
      document = parseStatusDocument(JSON.parse(raw));
    } catch (error) {
      throw new OpsError(
        `Cannot read the autoscaler's status in Consul key "${DEFAULT_STATUS_KEY}": ${
          (error as Error).message
        }`,
        { code: "BAD_STATUS", cause: error },
      );
    }
  }
  const replicas = Object.fromEntries(
    services.map((service) => [service.fullName, service.replicas]),
  );
  return planAutoscaleStatus({
    stack: config.stack,
    labels,
    replicas,
    document,
    now: context.now(),
  });
}

/** Runs `autoscale status`. */
export async function autoscaleStatusCommand(
  context: CommandContext,
  name: string | undefined,
): Promise<void> {
  const { config } = context;
  const only = name === undefined ? undefined : resolveService(name, context.services).name;
  const planned = await readAutoscaleStatus(context);
  const rows = planned.rows.filter((row) => only === undefined || row.service === only);
  const table = rows.length === 0
    ? only === undefined
      ? `no service of stack "${config.stack}" has autoscaling labels (platform.autoscale.min/max)`
      : `"${only}" has no autoscaling labels (platform.autoscale.min/max): it is never scaled`
    : formatTable(
      ["SERVICE", "REPLICAS", "METRIC", "DESIRED", "STATE", "POLICY", "WHY"],
      rows.map((row) => [
        row.service,
        row.replicas === null ? "-" : String(row.replicas),
        row.metric ?? "-",
        row.desired === null ? "-" : String(row.desired),
        row.paused ? "paused" : row.state,
        row.policy,
        row.why,
      ]),
    );
  const lines = [table];
  if (planned.note) lines.push(`! ${planned.note}`);
  lines.push(`Prometheus: ${config.prometheusUrl}/`);
  context.result(
    { stack: config.stack, note: planned.note, prometheus: config.prometheusUrl, services: rows },
    lines.join("\n"),
  );
}

/** Runs `autoscale pause` (`paused` true) or `autoscale resume` (false). */
export async function autoscalePauseCommand(
  context: CommandContext,
  name: string,
  paused: boolean,
  flags: AutoscalePauseFlags,
): Promise<void> {
  const service = resolveService(name, context.services);
  const fullName = swarmServiceName(context.config.stack, service);
  const args = paused ? ["--label-add", `${PAUSED_LABEL}=true`] : ["--label-rm", PAUSED_LABEL];
  const verb = paused ? "paused" : "resumed";
  if (flags.dryRun) {
    context.result(
      { service: service.name, paused, dryRun: true },
      `dry run: would run docker service update ${args.join(" ")} ${fullName}`,
    );
    return;
  }
  const labels = await context.docker.serviceLabels(context.config.stack);
  if (labels[fullName] === undefined) {
    throw new OpsError(
      `Cannot ${paused ? "pause" : "resume"} "${service.name}": "${fullName}" is not deployed`,
      {
        code: "NOT_DEPLOYED",
      },
    );
  }
  if (!paused && labels[fullName][PAUSED_LABEL] === undefined) {
    context.result(
      { service: service.name, paused: false },
      `${service.name}: autoscaling was not paused`,
    );
    return;
  }
  // A service label: Swarm keeps it with the service, no task restarts.
  await context.docker.serviceUpdate(fullName, args);
  context.result(
    { service: service.name, paused },
    `${service.name}: autoscaling ${verb} (${
      paused ? `label ${PAUSED_LABEL}=true` : `label ${PAUSED_LABEL} removed`
    })`,
  );
}

/** Registers `autoscale status|pause|resume`. */
export function registerAutoscale(program: Command, run: CommandRunner): void {
  const autoscale = program.command("autoscale")
    .description("the autoscaler: status of each service, pause or resume one");
  autoscale.command("status")
    .description("policy, current metric, desired replicas and why, per autoscaled service")
    .argument("[service]", "one service (echo, weather, ... or a full name)")
    .action((name: string | undefined) => run((context) => autoscaleStatusCommand(context, name)));
  for (const [verb, paused] of [["pause", true], ["resume", false]] as const) {
    autoscale.command(verb)
      .description(`${verb} autoscaling of one service (label ${PAUSED_LABEL})`)
      .argument("<service>", "echo, weather, itinerary, router or a full name")
      .option("--dry-run", "show the change and stop")
      .action((name: string, flags: AutoscalePauseFlags) =>
        run((context) => autoscalePauseCommand(context, name, paused, flags))
      );
  }
}
