/** `logs <service>`: the logs of every instance, each line prefixed with its instance. */
import type { Command } from "commander";
import { formatLogLine } from "../plan/log_line.ts";
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
  await context.docker.serviceLogs(swarmServiceName(context.config.stack, service), {
    follow: flags.follow,
    since: flags.since,
    onLine: (line) => write(formatLogLine(line, service.name)),
  });
}

/** Registers `logs`. */
export function registerLogs(program: Command, run: CommandRunner): void {
  program.command("logs")
    .description("print the logs of every instance of a service, prefixed with the instance")
    .argument("<service>", "echo, weather, itinerary, consul or a full name")
    .option("-f, --follow", "keep printing new lines")
    .option("--since <time>", 'only lines since a time or a duration ("10m", RFC 3339)')
    .action((name: string, flags: LogsFlags) =>
      run((context) => logsCommand(context, name, flags, (line) => context.line(line)))
    );
}
