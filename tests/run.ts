/**
 * Runs the whole test suite with Deno's own runner, streaming its output, then closes with one
 * plain line `N passed, N failed` taken from Deno's own summary. Exits with Deno's exit code.
 * The Swarm end-to-end tests are included (`PLATFORM_E2E=1`) unless the caller set
 * `PLATFORM_E2E` itself; tests run with the permissions `deno.json` declares (`-P`).
 *
 *   deno run -A tests/run.ts [extra deno test arguments]
 */
const SUMMARY = /(ok|FAILED) \| (\d+) passed(?: \([^)]*\))? \| (\d+) failed/;
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

// Tests spawn the CLI and the services as programs and read their stderr: fetch every npm package
// they import first, so no "Download ..." line lands in the middle of what a test reads.
const ENTRYPOINTS = [
  "ops/main.ts",
  "ops/probe/main.ts",
  "ops/probe/mcp_main.ts",
  "bench/main.ts",
  "prometheus/main.ts",
  ...[...Deno.readDirSync("services")]
    .filter((entry) => entry.isDirectory)
    .map((entry) => `services/${entry.name}/main.ts`)
    .filter((path) => {
      try {
        return Deno.statSync(path).isFile;
      } catch {
        return false;
      }
    }),
];
const cached = await new Deno.Command(Deno.execPath(), {
  args: ["install", "--quiet", "--entrypoint", ...ENTRYPOINTS],
  stdout: "inherit",
  stderr: "inherit",
  stdin: "null",
}).output();
if (!cached.success) {
  console.log(`0 passed, 1 failed`);
  console.error("error: cannot fetch the npm packages the programs under test import");
  Deno.exit(1);
}

const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "-P", ...Deno.args],
  env: { PLATFORM_E2E: Deno.env.get("PLATFORM_E2E") ?? "1" },
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
