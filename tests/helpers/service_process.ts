/**
 * Runs real platform service processes (`services/<program>/main.ts`), and other Deno programs of
 * the repository, for integration tests.
 */
import { fileURLToPath } from "node:url";
import { freePort } from "./consul_dev.ts";

/** A Deno process a test started. */
export interface TestProcess {
  /** The process ID, e.g. to read its CPU time. */
  readonly pid: number;
  /** Sends a signal unless the process has exited. */
  kill(signal: Deno.Signal): void;
  /** Resolves when the process has exited and its output is read. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** What it wrote to stderr and stdout so far (the last 4 MiB of a long run). */
  output(): string;
  /** Sends `signal` (default SIGTERM) unless it has exited, and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** A running service process. */
export interface ServiceProcess extends TestProcess {
  readonly program: string;
  readonly id: string;
  readonly port: number;
  readonly address: string;
}

/** Options of {@linkcode spawnDeno}. */
export interface SpawnDenoOptions {
  /** The environment, on top of the test's own. */
  env?: Record<string, string>;
}

/** `lb sync` started by {@linkcode spawnLbSync}: the process and the loopback ports it serves. */
export interface LbSyncProcess extends TestProcess {
  mcpPort: number;
  statsPort: number;
  metricsPort: number;
  /** HAProxy's runtime API socket, in the run folder. */
  adminSocket: string;
}

/**
 * Starts the real `lb sync` (HAProxy 2.6 kept in step with Consul at `consulUrl`) on loopback, its
 * config and sockets in `runDir`, on free ports; `env` adds or overrides `LB_*` settings.
 */
export function spawnLbSync(
  consulUrl: string,
  runDir: string,
  env: Record<string, string> = {},
): LbSyncProcess {
  const ports = { mcpPort: freePort(), statsPort: freePort(), metricsPort: freePort() };
  const process = spawnDeno(["ops/main.ts", "lb", "sync"], {
    env: {
      CONSUL_HTTP_ADDR: consulUrl,
      LB_RUN_DIR: runDir,
      LB_BIND_ADDR: "127.0.0.1",
      LB_MCP_PORT: String(ports.mcpPort),
      LB_STATS_PORT: String(ports.statsPort),
      LB_METRICS_PORT: String(ports.metricsPort),
      LB_MIN_SLOTS: "2",
      LB_HARD_STOP_AFTER: "1s",
      ...env,
    },
  });
  return { ...process, ...ports, adminSocket: `${runDir}/admin.sock` };
}

/** Options of {@linkcode startService}. */
export interface StartServiceOptions {
  consulUrl: string;
  id: string;
  port?: number;
  env?: Record<string, string>;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
// A long run (a benchmark) logs a line per request: only the tail is kept.
const MAX_OUTPUT_CHARS = 4 * 1024 * 1024;

/** Runs `deno run --allow-all <args>` in the repository root (paths in `args` are relative to it). */
export function spawnDeno(args: readonly string[], options: SpawnDenoOptions = {}): TestProcess {
  return spawnProgram(Deno.execPath(), ["run", "--allow-all", ...args], options);
}

/** Runs `command <args>` in the repository root, as a test process (output kept, stoppable). */
export function spawnProgram(
  command: string,
  args: readonly string[],
  options: SpawnDenoOptions = {},
): TestProcess {
  const child = new Deno.Command(command, {
    args: [...args],
    cwd: ROOT,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  async function collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length > MAX_OUTPUT_CHARS) text = text.slice(-MAX_OUTPUT_CHARS / 2);
    }
  }
  const exited = Promise.all([collect(child.stdout), collect(child.stderr)]).then(() =>
    child.status
  );
  let done = false;
  exited.then(() => done = true);
  return {
    pid: child.pid,
    kill(signal) {
      if (!done) child.kill(signal);
    },
    exited,
    output: () => text,
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (!done) {
        try {
          child.kill(signal);
        } catch {
          // It exited in the meantime.
        }
      }
      return await exited;
    },
  };
}

/** Starts `services/<program>/main.ts` on loopback, registered under `id`. */
export function startService(program: string, options: StartServiceOptions): ServiceProcess {
  const port = options.port ?? freePort();
  const child = spawnDeno([`services/${program}/main.ts`], {
    env: {
      CONSUL_HTTP_ADDR: options.consulUrl,
      PORT: String(port),
      ADVERTISE_ADDR: "127.0.0.1",
      SERVICE_ID: options.id,
      CHECK_INTERVAL: "500ms",
      DRAIN_SECONDS: "0.3",
      LOG_LEVEL: "info",
      // PORT + 1000 (the default) may be taken on a machine running many tests.
      METRICS_PORT: "0",
      ...options.env,
    },
  });
  return { ...child, program, id: options.id, port, address: `127.0.0.1:${port}` };
}

/** One entry of `/v1/health/service/<name>`. */
export interface HealthEntry {
  Service: {
    ID: string;
    Address: string;
    Port: number;
    Tags: string[];
    Meta: Record<string, string>;
  };
  Checks: { Status: string; ServiceID: string }[];
}

/** The IDs of passing instances of `service`. */
export async function passingIds(consulUrl: string, service: string): Promise<string[]> {
  const response = await fetch(`${consulUrl}/v1/health/service/${service}?passing`);
  const entries = await response.json() as HealthEntry[];
  return entries.map((entry) => entry.Service.ID).sort();
}

/** Every registered instance of `service` with its health entry. */
export async function healthEntries(consulUrl: string, service: string): Promise<HealthEntry[]> {
  const response = await fetch(`${consulUrl}/v1/health/service/${service}`);
  return await response.json() as HealthEntry[];
}
