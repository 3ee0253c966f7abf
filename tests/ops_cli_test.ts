/** The ops CLI as a user runs it: usage errors exit 2 with one `error:` line, help exits 0. */
import assert from "node:assert/strict";

const MAIN = new URL("../ops/main.ts", import.meta.url).pathname;

async function ops(...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    // A stack name no test deploys: none of these commands may reach Docker anyway.
    env: { PLATFORM_STACK: "ops-cli-test" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("ops --help lists every command and exits 0", async () => {
  const run = await ops("--help");
  assert.equal(run.code, 0, run.stderr);
  for (
    const verb of [
      "deploy",
      "scale",
      "status",
      "logs",
      "probe",
      "update",
      "rollback",
      "prune",
      "destroy",
      "build",
    ]
  ) {
    assert.match(run.stdout, new RegExp(`^  ${verb}\\b`, "m"), verb);
  }
});

Deno.test("ops rejects bad command lines with exit code 2 and one error line", async (t) => {
  const cases: [string[], RegExp][] = [
    [["scale", "echo", "-1"], /^error: Invalid replica count "-1"/],
    [["scale", "echo", "three"], /^error: Invalid replica count "three"/],
    [["scale", "nope", "2"], /^error: Unknown service "nope"/],
    [["scale", "consul", "2"], /^error: Service "consul" runs as exactly one replica/],
    [["update", "echo"], /^error: Nothing to update/],
    [["update", "echo", "--env", "NOEQUALS"], /^error: Invalid --env "NOEQUALS"/],
    [["logs", "nope"], /^error: Unknown service "nope"/],
    [["probe", "echo", "--rate", "0"], /^error: Invalid rate "0"/],
    [["bogus"], /^error: unknown command 'bogus'/],
    [["status", "--timeout", "x"], /^error: Invalid configuration: timeout must be an integer/],
    [
      ["deploy", "--with", "echo"],
      /^error: --with takes an optional service \("conformance-server"\)/,
    ],
  ];
  for (const [args, pattern] of cases) {
    await t.step(args.join(" "), async () => {
      const run = await ops(...args);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr.trim(), pattern);
      assert.equal(
        run.stderr.trim().split("\n").filter((line) => line.startsWith("error:")).length,
        1,
      );
      assert.equal(run.stdout, "");
    });
  }
});
