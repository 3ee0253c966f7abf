/**
 * The ops tool's entry point, and the only place that exits: results go to stdout, progress to
 * stderr, a failure prints `error: <message>` and exits 1 (2 for usage errors).
 */
import { writeStderr, writeStdout } from "./adapters/terminal.ts";
import { runCli } from "./cli.ts";
import { PlatformError } from "../services/runtime/platform_error.ts";
import { delay } from "../services/runtime/delay.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

try {
  await runCli(Deno.args, {
    env: Deno.env.toObject(),
    facts: { root, denoPath: Deno.execPath() },
    stdout: writeStdout,
    stderr: writeStderr,
    isTerminal: Deno.stderr.isTerminal(),
    now: Date.now,
    sleep: (ms) => delay(ms),
  });
  Deno.exit(0);
} catch (error) {
  // `ops logs echo | head`: the reader left, which is not a failure.
  if (error instanceof Deno.errors.BrokenPipe) Deno.exit(0);
  const message = error instanceof Error ? error.message : String(error);
  writeStderr(`error: ${message}\n`);
  if (!(error instanceof PlatformError) && error instanceof Error && Deno.env.get("OPS_DEBUG")) {
    writeStderr(`${error.stack}\n`);
  }
  Deno.exit(error instanceof PlatformError ? error.exitCode : 1);
}
