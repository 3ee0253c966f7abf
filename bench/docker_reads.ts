/**
 * `deno task bench docker_reads [--stack S] [--rounds N]`: the ops tool's read of a stack's
 * services and tasks (what `status` and every wait do once a second), through the Engine API
 * (`DockerEngine.services`) and through the `docker` CLI as it was read before (`service ls`,
 * `service inspect`, `service ps`, `inspect`: four processes), alternating, side by side. Reads
 * only. Results in `bench/results/docker_reads-<time>.json`.
 */
import { parseArgs } from "node:util";
import { DockerEngine } from "../ops/adapters/docker_engine.ts";
import { parseSwarmServices, type SwarmService } from "../ops/plan/state.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    stack: { type: "string", default: "agent-platform" },
    rounds: { type: "string", default: "20" },
  },
});
const stack = values.stack!;
const rounds = Math.min(200, Math.max(1, Number(values.rounds)));

async function docker(args: string[]): Promise<string> {
  const output = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

/** The CLI read the ops tool made before the Engine API. */
async function cliServices(): Promise<SwarmService[]> {
  const lines = (text: string) => text.split("\n").map((line) => line.trim()).filter(Boolean);
  const ids = lines(
    await docker([
      "service",
      "ls",
      "--quiet",
      "--filter",
      `label=com.docker.stack.namespace=${stack}`,
    ]),
  );
  if (ids.length === 0) return [];
  const services = JSON.parse(await docker(["service", "inspect", ...ids]));
  const taskIds = lines(await docker(["service", "ps", "--quiet", "--no-trunc", ...ids]));
  const tasks = taskIds.length === 0 ? [] : JSON.parse(await docker(["inspect", ...taskIds]));
  return parseSwarmServices(stack, services, tasks);
}

const engine = new DockerEngine();
const readers: Record<string, () => Promise<SwarmService[]>> = {
  api: () => engine.services(stack),
  cli: cliServices,
};
const samples: Record<string, number[]> = { api: [], cli: [] };
let shape = "";
for (let round = 0; round <= rounds; round++) {
  for (const [name, read] of Object.entries(readers)) {
    const started = performance.now();
    const services = await read();
    // Round 0 warms both paths up (module load, first connection) and is not counted.
    if (round > 0) samples[name].push(performance.now() - started);
    shape = `${services.length} services, ${
      services.reduce((sum, service) => sum + service.tasks.length, 0)
    } tasks`;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(
    sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] * 10,
  ) /
    10;
}

const result = {
  stack,
  shape,
  rounds,
  loadAverage: Deno.loadavg(),
  ms: Object.fromEntries(
    Object.entries(samples).map((
      [name, values],
    ) => [name, { p50: percentile(values, 50), p90: percentile(values, 90) }]),
  ),
  ratioP50: Math.round(percentile(samples.cli, 50) / percentile(samples.api, 50)),
};
console.log(JSON.stringify(result, null, 2));
const dir = new URL("./results/", import.meta.url).pathname;
await Deno.mkdir(dir, { recursive: true });
const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\..*/, "");
await Deno.writeTextFile(
  `${dir}docker_reads-${stamp}.json`,
  `${JSON.stringify(result, null, 2)}\n`,
);
