/**
 * `logs [service]`: the logs of every instance, each line prefixed with its instance. Without a
 * service (or with `all`) every service of the stack, merged.
 */
import type { Command } from "commander";
import { OpsError } from "../errors.ts";
import { formatLogLine, type InstanceLog, mergeInstanceLogs } from "../plan/log_line.ts";
import { type PlatformService, resolveService, swarmServiceName } from "../plan/services.ts";
import type { CommandContext, CommandRunner } from "../context.ts";

/** Options of `logs`. */
export interface LogsFlags {
  follow?: boolean;
  since?: string;
}

/** The services `logs` reads: the one named, or every deployed one for none or `all`. */
async function servicesToRead(
  context: CommandContext,
  name: string | undefined,
): Promise<PlatformService[]> {
  const deployed = await context.docker.services(context.config.stack);
  if (name !== undefined && name !== "all") {
    const service = resolveService(name, context.services);
    if (!deployed.some((entry) => entry.name === service.name)) {
      throw new OpsError(
        `Service "${service.name}" is not deployed in stack "${context.config.stack}"`,
        { code: "NOT_DEPLOYED" },
      );
    }
    return [service];
  }
  const services = context.services.filter((service) =>
    deployed.some((entry) => entry.name === service.name)
  );
  if (services.length === 0) {
    throw new OpsError(`Stack "${context.config.stack}" is not deployed`, {
      code: "NOT_DEPLOYED",
    });
  }
  return services;
}

/** Runs `logs`; with `--follow` it runs until interrupted. */
export async function logsCommand(
  context: CommandContext,
  name: string | undefined,
  flags: LogsFlags,
  write: (line: string) => void,
): Promise<void> {
  const services = await servicesToRead(context, name);
  if (flags.follow) {
    // Lines of all services interleave as they come.
    await Promise.all(
      services.map((service) =>
        context.docker.serviceLogs(swarmServiceName(context.config.stack, service), {
          follow: true,
          since: flags.since,
          onLine: (line) => write(formatLogLine(line, service.name)),
        })
      ),
    );
    return;
  }
  // Without --follow, each task's container is read on its own: `docker service logs` can hang
  // for good once a task's container was killed (seen with Docker 20.10).
  const deployed = await context.docker.services(context.config.stack);
  const logs: Promise<InstanceLog>[] = [];
  for (const service of services) {
    const swarm = deployed.find((entry) => entry.name === service.name);
    for (const task of swarm?.tasks ?? []) {
      if (!task.containerId) continue;
      logs.push(
        context.docker.containerLogs(task.containerId, flags.since).then((lines) => ({
          instance: `${service.name}-${task.id}`,
          lines,
        })),
      );
    }
  }
  for (const line of mergeInstanceLogs(await Promise.all(logs))) write(line);
}

/** Registers `logs`. */
export function registerLogs(program: Command, run: CommandRunner): void {
  program.command("logs")
    .description(
      "print the logs of every instance of a service (or of every service), prefixed with the instance",
    )
    .argument("[service]", "echo, weather, itinerary, router, lb, consul, a full name, or all")
    .option("-f, --follow", "keep printing new lines")
    .option("--since <time>", 'only lines since a time or a duration ("10m", RFC 3339)')
    .action((name: string | undefined, flags: LogsFlags) =>
      run((context) => logsCommand(context, name, flags, (line) => context.line(line)))
    );
}
