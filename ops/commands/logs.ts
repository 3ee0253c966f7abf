/** `logs <service>`: the logs of every instance, each line prefixed with its instance. */
import type { Command } from "commander";
import { formatLogLine, mergeInstanceLogs } from "../plan/log_line.ts";
import { findService } from "./_rollout.ts";
import { resolveService, swarmServiceName } from "../plan/services.ts";
import type { CommandContext, CommandRunner } from "../context.ts";

/** Options of `logs`. */
export interface LogsFlags {
  follow?: boolean;
  since?: string;
}

/** Runs `logs`; with `--follow` it runs until interrupted. */
export async function logsCommand(
  context: CommandContext,
  name: string,
  flags: LogsFlags,
  write: (line: string) => void,
): Promise<void> {
  const service = resolveService(name, context.services);
  if (flags.follow) {
    await context.docker.serviceLogs(swarmServiceName(context.config.stack, service), {
      follow: true,
      since: flags.since,
      onLine: (line) => write(formatLogLine(line, service.name)),
    });
    return;
  }
  // Without --follow, each task's container is read on its own: `docker service logs` can hang
  // for good once a task's container was killed (seen with Docker 20.10).
  const swarm = await findService(context, service.name);
  const logs = await Promise.all(
    swarm.tasks.filter((task) => task.containerId).map(async (task) => ({
      instance: `${service.name}-${task.id}`,
      lines: await context.docker.containerLogs(task.containerId!, flags.since),
    })),
  );
  for (const line of mergeInstanceLogs(logs)) write(line);
}

/** Registers `logs`. */
export function registerLogs(program: Command, run: CommandRunner): void {
  program.command("logs")
    .description("print the logs of every instance of a service, prefixed with the instance")
    .argument("<service>", "echo, weather, itinerary, router, lb, consul or a full name")
    .option("-f, --follow", "keep printing new lines")
    .option("--since <time>", 'only lines since a time or a duration ("10m", RFC 3339)')
    .action((name: string, flags: LogsFlags) =>
      run((context) => logsCommand(context, name, flags, (line) => context.line(line)))
    );
}
