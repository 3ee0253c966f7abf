/**
 * The autoscaler's Swarm reads against the real Docker engine. Read calls only: the engine is
 * shared, so nothing here changes a service (scaling is covered by scaledSpec()'s unit test and by
 * the end-to-end test of a deployed stack).
 */
import assert from "node:assert/strict";
import { DockerSwarm } from "../services/autoscaler/swarm.ts";

const SOCKET = "/var/run/docker.sock";

async function docker(...args: string[]): Promise<{ code: number; stdout: string }> {
  const output = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" })
    .output();
  return { code: output.code, stdout: new TextDecoder().decode(output.stdout) };
}

Deno.test("DockerSwarm.list() agrees with docker service ls", async () => {
  const info = await docker("info", "--format", "{{.Swarm.ControlAvailable}}");
  // Every stack service carries `com.docker.stack.namespace`: list those the way the autoscaler
  // lists its own labels.
  const swarm = new DockerSwarm(SOCKET, { labelPrefix: "com.docker.stack." });
  if (info.stdout.trim() !== "true") {
    await assert.rejects(
      swarm.list(),
      /Cannot list Swarm services through "\/var\/run\/docker.sock"/,
    );
    return;
  }
  const listed = await swarm.list();
  const ls = await docker(
    "service",
    "ls",
    "--filter",
    "mode=replicated",
    "--filter",
    "label=com.docker.stack.namespace",
    "--format",
    "{{.Name}} {{.Replicas}}",
  );
  assert.equal(ls.code, 0);
  const expected = ls.stdout.trim().split("\n").filter(Boolean).map((line) => {
    const [name, replicas] = line.split(" ");
    // `1/1` or `1/1 (max 1 per node)`: desired after the slash.
    return `${name} ${replicas.split("/")[1]}`;
  }).sort();
  assert.deepEqual(listed.map((service) => `${service.name} ${service.replicas}`).sort(), expected);
  for (const service of listed) {
    assert.ok(service.version > 0);
    assert.ok(service.running >= 0);
    assert.equal(
      service.name,
      `${service.labels["com.docker.stack.namespace"]}_${service.shortName}`,
    );
    assert.deepEqual((service.spec as { Labels?: unknown }).Labels, service.labels);
  }
});
