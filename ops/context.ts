/** What every command gets: configuration, adapters, output, progress and the clock. */
import { type Consul, ConsulHttp } from "./adapters/consul.ts";
import { type Docker, DockerCli } from "./adapters/docker.ts";
import { readHaproxyView } from "../haproxy/stats_view.ts";
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

/** What commands use of HAProxy from the outside: its stats page. */
export interface HaproxyStats {
  readView: typeof readHaproxyView;
}

/** The adapters a command reaches Docker, Consul and HAProxy through; tests pass fakes. */
export interface Adapters {
  docker: Docker;
  consul: Consul;
  haproxy: HaproxyStats;
}

/** Everything a command needs. */
export interface CommandContext {
  readonly config: OpsConfig;
  /** The process environment (commands that configure programs, such as `lb sync`, read it). */
  readonly env: Env;
  readonly docker: Docker;
  readonly consul: Consul;
  readonly haproxy: HaproxyStats;
  readonly progress: Progress;
  readonly services: readonly PlatformService[];
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Prints a command's result: `json` with `--json`, else `text`. */
  result(json: unknown, text: string): void;
  /** Prints one line of streamed output (logs) on stdout. */
  line(text: string): void;
}

/** Builds the context of one command run from the global flags; `adapters` replace the real ones. */
export function createContext(
  flags: GlobalFlags,
  io: CliIo,
  adapters: Partial<Adapters> = {},
): CommandContext {
  const config = parseConfig(io.env, flags, io.facts);
  return {
    config,
    env: io.env,
    docker: adapters.docker ?? new DockerCli(),
    consul: adapters.consul ??
      new ConsulHttp(config.consulUrl, { env: io.env, root: config.root, stack: config.stack }),
    haproxy: adapters.haproxy ?? { readView: readHaproxyView },
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
