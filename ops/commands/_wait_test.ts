import assert from "node:assert/strict";
import { fakeContext } from "../../tests/helpers/fake_ops.ts";
import { resolveService } from "../plan/services.ts";
import type { PruneAction } from "../plan/prune.ts";
import type { ConsulInstance, SwarmService } from "../plan/state.ts";
import { waitForAgreement } from "./_wait.ts";
import { passingInstance, swarmService, swarmTask } from "../../tests/helpers/swarm_fixtures.ts";

const ECHO = resolveService("echo");

function echoService(letters: string[]): SwarmService {
  return swarmService("echo-agent", 1, letters.map((letter) => swarmTask(letter)));
}

function passing(letter: string): ConsulInstance {
  return passingInstance("echo-agent", "agent-echo", letter);
}

Deno.test("waitForAgreement removes a passing ghost seen twice, then agrees", async () => {
  let instances = [passing("a"), passing("g")];
  const run = fakeContext({
    services: [ECHO],
    docker: { services: () => Promise.resolve([echoService(["a"])]) },
    consul: {
      ready: () => Promise.resolve(true),
      instances: () => Promise.resolve(instances),
      deregister: (id: string) => {
        instances = instances.filter((instance) => instance.id !== id);
        return Promise.resolve();
      },
    },
  });
  const ghosts: PruneAction[] = [];
  const snapshot = await waitForAgreement(run.context, [ECHO], {
    what: "echo",
    removeGhosts: ghosts,
  });
  assert.deepEqual(ghosts.map((ghost) => ghost.instanceId), [passing("g").id]);
  assert.equal(run.calls.filter((call) => call.name === "consul.deregister").length, 1);
  assert.ok(snapshot.statuses.every((status) => status.converged));
  assert.match(run.stderr.join(""), /removed echo-agent-g+ \(agent-echo, passing\)/);
});

Deno.test("waitForAgreement keeps an instance that registered before Swarm listed its task", async () => {
  // Poll 1: Consul already holds b's registration, Swarm does not list b yet; poll 2: it does.
  let polls = 0;
  const run = fakeContext({
    services: [ECHO],
    docker: {
      services: () => Promise.resolve([echoService(polls++ === 0 ? ["a"] : ["a", "b"])]),
    },
    consul: {
      ready: () => Promise.resolve(true),
      instances: () => Promise.resolve([passing("a"), passing("b")]),
    },
  });
  const ghosts: PruneAction[] = [];
  await assert.rejects(
    waitForAgreement(run.context, [ECHO], { what: "echo", removeGhosts: ghosts }),
    /Timed out .* waiting for echo/,
  );
  // Two tasks for one replica never agree, but b was never taken for a ghost.
  assert.deepEqual(ghosts, []);
  assert.equal(run.calls.filter((call) => call.name === "consul.deregister").length, 0);
});
