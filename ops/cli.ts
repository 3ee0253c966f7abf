/** The command line: global flags, the commands of `ops/commands/`, usage errors as exit code 2. */
import { Command, CommanderError } from "commander";
import { COMMANDS } from "./commands/mod.ts";
import type { GlobalFlags } from "./config.ts";
import { type CliIo, type CommandRunner, createContext } from "./context.ts";
import { UsageError } from "./errors.ts";

/** Builds the program; `io` is the process around it. */
export function createProgram(io: CliIo): Command {
  const program = new Command("ops")
    .description("Deploy and operate the agent platform on Docker Swarm")
    .option("--json", "print results as JSON on stdout")
    .option("--stack <name>", "Swarm stack name (env PLATFORM_STACK, default agent-platform)")
    .option("--timeout <seconds>", "how long to wait for Swarm and Consul to agree (default 300)")
    .option("--consul-port <port>", "host port of Consul's HTTP API (env PLATFORM_CONSUL_PORT)")
    .option("--mcp-port <port>", "host port of the MCP endpoint (env PLATFORM_MCP_PORT)")
    .option("--stats-port <port>", "host port of HAProxy's stats (env PLATFORM_STATS_PORT)")
    .option(
      "--prometheus-port <port>",
      "host port of Prometheus's UI and API (env PLATFORM_PROMETHEUS_PORT)",
    )
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} })
    .showHelpAfterError(false)
    .allowExcessArguments(false);

  const run: CommandRunner = async (body) => {
    const context = createContext(program.opts<GlobalFlags>(), io);
    await body(context);
  };
  for (const register of COMMANDS) register(program, run);
  for (const command of program.commands) {
    command.exitOverride().allowExcessArguments(false)
      .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} });
  }
  return program;
}

/** Runs the CLI. Throws {@linkcode UsageError} for a bad command line; returns normally for help. */
export async function runCli(args: readonly string[], io: CliIo): Promise<void> {
  const program = createProgram(io);
  if (args.length === 0) {
    program.outputHelp();
    throw new UsageError("Missing command");
  }
  try {
    await program.parseAsync([...args], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return; // --help, --version
      throw new UsageError(error.message.replace(/^error: /, ""), { cause: error });
    }
    throw error;
  }
}
