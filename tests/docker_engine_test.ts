/**
 * The ops tool's Engine API reads (dockerode) against the real Docker engine, checked against the
 * `docker` CLI's own view. Reads only: the engine is shared, so nothing here changes it (writes are
 * covered by the unit tests with fakes and by the end-to-end tests).
 */
import assert from "node:assert/strict";
import { DockerEngine } from "../ops/adapters/docker_engine.ts";

async function docker(...args: string[]): Promise<string> {
  const output = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

async function swarmActive(): Promise<boolean> {
  return (await docker("info", "--format", "{{.Swarm.LocalNodeState}}")).trim() === "active";
}

Deno.test("DockerEngine reads the same services and nodes as the docker CLI", async (t) => {
  if (!(await swarmActive())) {
    // No Swarm: the engine answers with an error the ops tool names.
    await assert.rejects(new DockerEngine().nodes(""), /^OpsError: Cannot list the Swarm's nodes/);
    return;
  }
  const engine = new DockerEngine();
  await t.step("nodes: the same IDs and hostnames, this node marked", async () => {
    const self = (await docker("info", "--format", "{{.Swarm.NodeID}}")).trim();
    const nodes = await engine.nodes(self);
    const cli = (await docker("node", "ls", "--format", "{{.ID}} {{.Hostname}}")).trim()
      .split("\n").sort();
    assert.deepEqual(nodes.map((node) => `${node.id} ${node.hostname}`).sort(), cli);
    assert.deepEqual(nodes.filter((node) => node.self).map((node) => node.id), [self]);
  });

  const stacks = (await docker("stack", "ls", "--format", "{{.Name}}")).trim().split("\n")
    .filter((name) => name !== "");
  for (const stack of stacks) {
    await t.step(`stack "${stack}": services, replicas, labels and tasks`, async () => {
      const cli = (await docker(
        "service",
        "ls",
        "--filter",
        `label=com.docker.stack.namespace=${stack}`,
        "--format",
        "{{.ID}} {{.Name}} {{.Mode}}",
      )).trim().split("\n").sort();
      const services = await engine.services(stack);
      assert.deepEqual(
        services.map((service) =>
          `${service.id.slice(0, 12)} ${service.fullName} ${
            service.global ? "global" : "replicated"
          }`
        ).sort(),
        cli,
      );
      const labels = await engine.serviceLabels(stack);
      for (const service of services) {
        assert.equal(labels[service.fullName]["com.docker.stack.namespace"], stack);
        // Every task the CLI lists is read (tasks may start between the two reads, not vanish).
        const cliTasks = (await docker("service", "ps", "--quiet", "--no-trunc", service.id))
          .trim().split("\n").filter((id) => id !== "");
        const read = new Set(
          (await engine.services(stack))
            .find((entry) => entry.id === service.id)?.tasks.map((task) => task.id),
        );
        for (const id of cliTasks) assert.ok(read.has(id), `task ${id} of ${service.fullName}`);
      }
    });
  }
});

Deno.test("DockerEngine reads a running container's log as docker logs does", async () => {
  const containers = (await docker("ps", "--quiet", "--filter", "status=running")).trim()
    .split("\n").filter((id) => id !== "");
  if (containers.length === 0) return;
  const container = containers[0];
  const since = String(Math.floor(Date.now() / 1000) - 3600);
  const lines = await new DockerEngine().containerLogs(container, since);
  const output = await new Deno.Command("docker", {
    args: ["logs", "--timestamps", "--since", since, container],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const cli = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  const cliLines = cli.split("\n").filter((line) => line !== "");
  // The log grows between the two reads: what the API read first is a prefix of what came after.
  const sorted = (list: string[]) => [...list].sort();
  for (const line of lines.slice(0, 20)) {
    assert.ok(cliLines.includes(line), `"${line}" missing from docker logs`);
  }
  assert.ok(sorted(lines).length <= cliLines.length + 5);
  assert.deepEqual(await new DockerEngine().containerLogs("no-such-container-seams"), []);
});
