/** `deno task bench <name> [flags]`: runs `bench/<name>.ts`; results go to `bench/results/`. */
const BENCHMARKS: Readonly<Record<string, string>> = {
  router: "the router's hot path: calls per second and latency, fast path beside the SDK path",
  lb: "HAProxy in front of the routers: membership changes under load",
  conformance: "the MCP conformance scenarios through a router",
  peers: "the platform beside mcp-proxy and a bare SDK server (--platform local|deployed)",
  limits: "a flood of 10x a client's rate beside a normal client, and the normal client alone",
  autoscale: "the autoscaler on a deployed stack: load up, scale out, load down, scale in",
  cluster: "node loss on the local 3-node Swarm: time out of Consul and HAProxy, failed calls",
};

const name = Deno.args[0];
if (name === undefined || !Object.hasOwn(BENCHMARKS, name)) {
  const list = Object.entries(BENCHMARKS).map(([key, what]) => `  ${key.padEnd(12)} ${what}`);
  console.error(
    `error: ${name === undefined ? "no benchmark named" : `unknown benchmark "${name}"`}; ` +
      `usage: deno task bench <name> [flags], one of:\n${list.join("\n")}`,
  );
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
