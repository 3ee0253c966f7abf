/** HAProxy's runtime API and master CLI over their UNIX sockets. */
import { delay } from "../services/runtime/delay.ts";
import { PlatformError } from "../services/runtime/platform_error.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options of {@linkcode socketCommand}. */
export interface SocketCommandOptions {
  /** Give up after this long; default 5 s. */
  timeoutMs?: number;
}

/** Sends one command line (commands may be joined by `;`) and returns the whole answer. */
export async function socketCommand(
  path: string,
  command: string,
  options: SocketCommandOptions = {},
): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  let connection: Deno.UnixConn;
  try {
    connection = await Deno.connect({ transport: "unix", path });
  } catch (error) {
    throw new Error(`Cannot reach HAProxy at "${path}": ${reason(error)}`, { cause: error });
  }
  const timer = setTimeout(() => {
    try {
      connection.close();
    } catch {
      // Already closed.
    }
  }, timeoutMs);
  try {
    await writeAll(connection, encoder.encode(`${command}\n`));
    // The master CLI answers only once the client is done writing.
    await connection.closeWrite();
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const read = await connection.read(buffer);
      if (read === null) break;
      chunks.push(buffer.slice(0, read));
    }
    return decoder.decode(concat(chunks));
  } catch (error) {
    throw new Error(`HAProxy at "${path}" did not answer "${command}": ${reason(error)}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
    try {
      connection.close();
    } catch {
      // Closed by the timer or the peer.
    }
  }
}

/** An answer of `set server …` that reports a failure rather than a change. */
export function isRuntimeError(answer: string): boolean {
  const text = answer.trim();
  return text !== "" && !/changed from|no need to change/.test(text);
}

/** Runs runtime API commands in order; throws at the first one HAProxy refuses. */
export async function runtimeCommands(path: string, commands: readonly string[]): Promise<void> {
  // The runtime API splits its input on `;` and line breaks: one command must stay one command,
  // whatever slipped past validation upstream.
  const unsafe = commands.find((command) => /[;\r\n\0]/.test(command));
  if (unsafe !== undefined) {
    throw new Error(`Refusing to send ${JSON.stringify(unsafe)} to HAProxy: it holds a separator`);
  }
  for (const command of commands) {
    const answer = await socketCommand(path, command);
    if (isRuntimeError(answer)) {
      throw new Error(`HAProxy refused "${command}": ${answer.trim()}`);
    }
  }
}

/** One row of `show stat`: a frontend, backend or server, by CSV column name. */
export type StatRow = Record<string, string>;

/** Parses `show stat` CSV. */
export function parseStat(csv: string): StatRow[] {
  const lines = csv.split("\n").filter((line) => line.trim() !== "");
  if (lines.length === 0 || !lines[0].startsWith("# ")) return [];
  const header = lines[0].slice(2).split(",");
  return lines.slice(1).map((line) => {
    const cells = line.split(",");
    const row: StatRow = {};
    header.forEach((name, index) => {
      if (name) row[name] = cells[index] ?? "";
    });
    return row;
  });
}

/** The servers' rows of `show stat`. */
export async function showServers(path: string): Promise<StatRow[]> {
  const rows = parseStat(await socketCommand(path, "show stat"));
  return rows.filter((row) => row.svname !== "FRONTEND" && row.svname !== "BACKEND");
}

/** A process line of the master CLI's `show proc`. */
export interface ProcLine {
  pid: number;
  kind: "master" | "worker" | "old worker";
  reloads: number;
  failed: number;
}

/** Parses `show proc`: the master, current workers and old workers. */
export function parseShowProc(text: string): ProcLine[] {
  const lines: ProcLine[] = [];
  let section: "master" | "worker" | "old worker" = "master";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "# workers") section = "worker";
    else if (line === "# old workers") section = "old worker";
    else if (line.startsWith("# programs")) section = "master";
    if (line === "" || line.startsWith("#")) continue;
    const match = /^(\d+)\s+(\S+)\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?/.exec(line);
    if (!match) continue;
    if (match[2] !== "master" && match[2] !== "worker") continue;
    lines.push({
      pid: Number(match[1]),
      kind: match[2] === "master" ? "master" : section,
      reloads: Number(match[3]),
      failed: Number(match[4] ?? 0),
    });
  }
  return lines;
}

/** Reads `show proc` from the master CLI. */
export async function showProc(masterSocket: string): Promise<ProcLine[]> {
  return parseShowProc(await socketCommand(masterSocket, "show proc"));
}

/** Options of {@linkcode masterReload}. */
export interface MasterReloadOptions {
  /** How long the new worker may take to appear; default 15 s. */
  timeoutMs?: number;
}

/**
 * Reloads through the master CLI and waits for the outcome: resolves with the new worker's PID, or
 * throws when the master reports a failed reload (the old worker keeps serving) or times out.
 */
export async function masterReload(
  masterSocket: string,
  options: MasterReloadOptions = {},
): Promise<number> {
  const before = await showProc(masterSocket);
  const master = before.find((line) => line.kind === "master");
  if (!master) throw new Error(`HAProxy's master CLI at "${masterSocket}" shows no master`);
  const oldWorkers = new Set(before.filter((line) => line.kind !== "master").map((l) => l.pid));
  // The master re-executes itself and closes this connection; no answer is expected.
  await socketCommand(masterSocket, "reload").catch(() => "");
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const now = await showProc(masterSocket);
      const current = now.find((line) => line.kind === "master");
      if (current && current.failed > master.failed) {
        throw new ReloadFailedError(
          `HAProxy refused the new config; the previous one keeps serving (failed reloads: ${current.failed})`,
        );
      }
      const fresh = now.find((line) => line.kind === "worker" && !oldWorkers.has(line.pid));
      if (current && fresh) return fresh.pid;
      last = `master reloads ${current?.reloads ?? "?"}, no new worker yet`;
    } catch (error) {
      if (error instanceof ReloadFailedError) throw error;
      last = reason(error);
    }
    await delay(20);
  }
  throw new ReloadFailedError(`HAProxy did not finish reloading in time: ${last}`);
}

/** A reload HAProxy did not take. */
export class ReloadFailedError extends PlatformError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: "HAPROXY_RELOAD_FAILED", cause: options.cause });
    this.name = "ReloadFailedError";
  }
}

async function writeAll(connection: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await connection.write(bytes.subarray(written));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
