import { managerInfo } from "../../tests/helpers/swarm_fixtures.ts";
import assert from "node:assert/strict";
import { fakeContext } from "../../tests/helpers/fake_ops.ts";
import { deployCommand } from "./deploy.ts";

/** The read-only calls a dry run may make; any other call fails the fake. */
const READS = {
  imageId: () => Promise.resolve(undefined),
  imageTags: () => Promise.resolve([]),
};

Deno.test("deploy --dry-run on an engine in no Swarm initialises nothing and labels nothing", async () => {
  const run = fakeContext({
    flags: { json: true },
    docker: {
      ...READS,
      info: () =>
        Promise.resolve({
          serverVersion: "27",
          swarmState: "inactive",
          isManager: false,
          nodeId: "",
        }),
    },
  });
  await deployCommand(run.context, { dryRun: true });
  // Only reads: no swarmInit, nodeLabels, build, tag, push, createSecret or stackDeploy.
  assert.deepEqual(
    [...new Set(run.names())].sort(),
    ["docker.imageId", "docker.imageTags", "docker.info"],
  );
  assert.match(run.stderr.join(""), /Swarm is inactive: would initialise a single-node Swarm/);
  const result = JSON.parse(run.stdout.join(""));
  assert.equal(result.dryRun, true);
  assert.equal(result.stack, "st");
  // deno-lint-ignore no-explicit-any
  assert.ok(result.actions.every((action: any) => action.action === "create"), run.stdout.join(""));
});

Deno.test("deploy --dry-run in a Swarm says which node labels it would set and sets none", async () => {
  const run = fakeContext({
    flags: { json: true },
    docker: {
      ...READS,
      info: managerInfo,
      nodes: () =>
        Promise.resolve([{
          id: "m",
          hostname: "solo",
          role: "manager",
          availability: "active",
          state: "ready",
          address: "10.0.0.1",
          labels: {},
          self: true,
          leader: true,
        }]),
      services: () => Promise.resolve([]),
    },
  });
  await deployCommand(run.context, { dryRun: true });
  assert.ok(!run.names().includes("docker.nodeLabels"), run.names().join(", "));
  assert.match(run.stderr.join(""), /would label node "solo"/);
  assert.equal(JSON.parse(run.stdout.join("")).dryRun, true);
});
