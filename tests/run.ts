/**
 * Runs the whole test suite with Deno's own runner, streaming its output, then closes with one
 * plain line `N passed, N failed` taken from Deno's own summary. Exits with Deno's exit code.
 *
 *   deno run -A tests/run.ts [extra deno test arguments]
 */
const SUMMARY = /(ok|FAILED) \| (\d+) passed(?: \([^)]*\))? \| (\d+) failed/;
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "--allow-all", ...Deno.args],
  stdout: "piped",
  stderr: "inherit",
  stdin: "null",
}).spawn();

let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;
const match = SUMMARY.exec(tail.replace(ANSI, ""));
if (match) {
  console.log(`${match[2]} passed, ${match[3]} failed`);
} else {
  console.log(`0 passed, 1 failed`);
  console.error("error: the test runner ended without a summary line");
}
Deno.exit(status.code === 0 && match ? 0 : status.code || 1);
