/** `deno task bench <name>`: runs `bench/<name>.ts`, e.g. `router` or `lb`. */
const name = Deno.args[0];
if (!name || !/^[a-z][a-z0-9_]*$/.test(name)) {
  console.error("error: usage: deno task bench <name> (e.g. router, lb)");
  Deno.exit(2);
}
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-all",
    new URL(`./${name}.ts`, import.meta.url).pathname,
    ...Deno.args.slice(1),
  ],
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
Deno.exit((await child.status).code);
