/** Starts HAProxy in master-worker mode, validates configs, reloads and stops it. */

import { masterReload, showProc } from "./runtime_api.ts";
import { delay } from "../services/runtime/delay.ts";

/** Outcome of `haproxy -c`. */
export interface ValidationResult {
  readonly ok: boolean;
  /** HAProxy's own words, warnings and alerts included. */
  readonly output: string;
}

/** Options of {@linkcode validateHaproxyConfig} and {@linkcode HaproxyProcess.start}. */
export interface HaproxyBinaryOptions {
  /** The executable; default `haproxy` on PATH. */
  binary?: string;
}

const decoder = new TextDecoder();

/** Runs `haproxy -c -f <path>`. */
export async function validateHaproxyConfig(
  path: string,
  options: HaproxyBinaryOptions = {},
): Promise<ValidationResult> {
  const output = await new Deno.Command(options.binary ?? "haproxy", {
    args: ["-c", "-f", path],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const text = (decoder.decode(output.stdout) + decoder.decode(output.stderr)).trim();
  return { ok: output.success, output: text };
}

/** Options of {@linkcode HaproxyProcess.start}. */
export interface HaproxyStartOptions extends HaproxyBinaryOptions {
  /** The master CLI socket (`-S`). */
  masterSocket: string;
  /** Each line HAProxy writes to stderr; default: dropped. */
  onLine?: (line: string) => void;
  /** How long the first worker may take; default 10 s. */
  timeoutMs?: number;
}

/** A running HAProxy master with its workers. */
export class HaproxyProcess {
  readonly #child: Deno.ChildProcess;
  readonly #masterSocket: string;
  readonly #tail: string[];
  readonly #exited: Promise<Deno.CommandStatus>;
  #stopping = false;

  private constructor(
    child: Deno.ChildProcess,
    masterSocket: string,
    tail: string[],
    exited: Promise<Deno.CommandStatus>,
  ) {
    this.#child = child;
    this.#masterSocket = masterSocket;
    this.#tail = tail;
    this.#exited = exited;
  }

  /** Starts `haproxy -W -S <master> -f <config>` and waits for its first worker. */
  static async start(configPath: string, options: HaproxyStartOptions): Promise<HaproxyProcess> {
    const child = new Deno.Command(options.binary ?? "haproxy", {
      args: ["-W", "-S", `${options.masterSocket},mode,600`, "-f", configPath],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const tail: string[] = [];
    const lines = pumpLines(child.stderr, (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      options.onLine?.(line);
    });
    const exited = Promise.all([child.status, lines]).then(([status]) => status);
    const process = new HaproxyProcess(child, options.masterSocket, tail, exited);
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    let done = false;
    exited.then(() => done = true);
    while (!done && Date.now() < deadline) {
      try {
        const procs = await showProc(options.masterSocket);
        if (procs.some((line) => line.kind === "worker")) return process;
      } catch {
        // The master CLI is not up yet.
      }
      await delay(20);
    }
    await process.stop({ graceful: false });
    throw new Error(
      `HAProxy did not start with "${configPath}": ${tail.join(" | ") || "no output"}`,
    );
  }

  /** The master's PID. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Resolves when the master exits. */
  get exited(): Promise<Deno.CommandStatus> {
    return this.#exited;
  }

  /** Whether {@linkcode stop} was called. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** HAProxy's last lines on stderr, for error reports. */
  get lastLines(): readonly string[] {
    return [...this.#tail];
  }

  /** Reloads through the master CLI; resolves with the new worker's PID. */
  reload(options: { timeoutMs?: number } = {}): Promise<number> {
    return masterReload(this.#masterSocket, options);
  }

  /**
   * Stops HAProxy: gracefully (SIGUSR1, workers finish their connections) or at once (SIGTERM);
   * SIGKILL when it outlives `timeoutMs` (default 10 s).
   */
  async stop(options: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.#stopping = true;
    signal(this.#child, options.graceful === false ? "SIGTERM" : "SIGUSR1");
    const timer = setTimeout(() => signal(this.#child, "SIGKILL"), options.timeoutMs ?? 10_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // Already gone.
  }
}

async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    for (const line of parts) if (line.trim()) onLine(line);
  }
  if (pending.trim()) onLine(pending);
}
