/** Runs external programs (docker, deno, debootstrap, tar) and reports failures with their stderr. */
import { OpsError } from "../errors.ts";

/** What a finished program gave. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode runCommand}. */
export interface RunCommandOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Text written to the program's stdin. */
  input?: string;
  /** Throw an {@linkcode OpsError} when the exit code is not 0 (default true). */
  check?: boolean;
  /** Called with each stderr line as it arrives (build progress). */
  onStderrLine?: (line: string) => void;
  /** Called with each stdout line as it arrives. */
  onStdoutLine?: (line: string) => void;
  signal?: AbortSignal;
}

/** Runs `program args…` to completion and returns its output. */
export async function runCommand(
  program: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: [...args],
      cwd: options.cwd,
      env: options.env,
      stdin: options.input === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      signal: options.signal,
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new OpsError(`Cannot run "${program}": it is not installed or not on PATH`, {
        code: "NOT_INSTALLED",
        cause: error,
      });
    }
    throw error;
  }
  if (options.input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.input));
    await writer.close();
  }
  const [stdout, stderr, status] = await Promise.all([
    collect(child.stdout, options.onStdoutLine),
    collect(child.stderr, options.onStderrLine),
    child.status,
  ]);
  const result = { code: status.code, stdout, stderr };
  if ((options.check ?? true) && status.code !== 0) {
    const detail = lastLines(stderr || stdout, 6) || `exit code ${status.code}`;
    throw new OpsError(`Command "${program} ${args.slice(0, 3).join(" ")}" failed: ${detail}`, {
      code: "COMMAND_FAILED",
    });
  }
  return result;
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  onLine?: (line: string) => void,
): Promise<string> {
  let text = "";
  let partial = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (!onLine) continue;
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  }
  if (onLine && partial !== "") onLine(partial);
  return text;
}

/** The last `count` non-empty lines of `text`, joined with "; ". */
export function lastLines(text: string, count: number): string {
  return text.split("\n").map((line) => line.trim()).filter((line) => line !== "")
    .slice(-count).join("; ");
}
