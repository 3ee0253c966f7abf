/** What every command gets: configuration, adapters, output, progress and the clock. */
import { ConsulHttp } from "./adapters/consul.ts";
import { DockerCli } from "./adapters/docker.ts";
import { createProgress, type Progress } from "./adapters/terminal.ts";
import { type Env, type Facts, type GlobalFlags, type OpsConfig, parseConfig } from "./config.ts";
import { PLATFORM_SERVICES, type PlatformService } from "./plan/services.ts";

/** The process around the CLI, given by `ops/main.ts` (and replaced in tests). */
export interface CliIo {
  env: Env;
  facts: Facts;
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal (live progress) or a log (plain lines). */
  isTerminal: boolean;
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Everything a command needs. */
export interface CommandContext {
  readonly config: OpsConfig;
  /** The process environment (commands that configure programs, such as `lb sync`, read it). */
  readonly env: Env;
  readonly docker: DockerCli;
  readonly consul: ConsulHttp;
  readonly progress: Progress;
  readonly services: readonly PlatformService[];
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Prints a command's result: `json` with `--json`, else `text`. */
  result(json: unknown, text: string): void;
  /** Prints one line of streamed output (logs) on stdout. */
  line(text: string): void;
}

/** Builds the context of one command run from the global flags. */
export function createContext(flags: GlobalFlags, io: CliIo): CommandContext {
  const config = parseConfig(io.env, flags, io.facts);
  return {
    config,
    env: io.env,
    docker: new DockerCli(),
    consul: new ConsulHttp(config.consulUrl, { env: io.env, root: config.root }),
    progress: createProgress({ isTerminal: io.isTerminal, write: io.stderr }),
    services: PLATFORM_SERVICES,
    now: io.now,
    sleep: io.sleep,
    result(json, text) {
      if (config.json) io.stdout(`${JSON.stringify(json, null, 2)}\n`);
      else io.stdout(text.endsWith("\n") ? text : `${text}\n`);
    },
    line(text) {
      io.stdout(`${text}\n`);
    },
  };
}

/** Runs a command's body with a fresh context; given to each command's `register…` by `ops/cli.ts`. */
export type CommandRunner = (body: (context: CommandContext) => Promise<void>) => Promise<void>;
