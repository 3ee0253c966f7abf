/** `deno task bench` with a wrong name or a bad flag: exit code 2 and a message that helps. */
import assert from "node:assert/strict";

async function bench(...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "bench/main.ts", ...args],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("bench: no name or an unknown one exits 2 listing the benchmarks", async () => {
  for (const args of [[], ["nope"], ["../ops/main"]]) {
    const run = await bench(...args);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /usage: deno task bench <name>/);
    for (const name of ["router", "lb", "peers", "limits", "autoscale", "cluster"]) {
      assert.match(run.stderr, new RegExp(`^  ${name} `, "m"));
    }
  }
});

Deno.test("bench: a bad numeric flag exits 2 before anything starts", async () => {
  for (
    const [name, flag] of [["router", "--rounds"], ["peers", "--calls"], ["limits", "--rounds"]]
  ) {
    const run = await bench(name, flag, "0");
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, new RegExp(`error: ${flag} must be a whole number from 1 to`));
  }
});
