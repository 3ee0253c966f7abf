import assert from "node:assert/strict";
import { fakeContext } from "../../tests/helpers/fake_ops.ts";
import { resolveService } from "../plan/services.ts";
import { passingInstance, swarmService, swarmTask } from "../../tests/helpers/swarm_fixtures.ts";
import { scaleCommand } from "./scale.ts";

const ECHO = resolveService("echo");
const WEATHER = resolveService("weather");

const task = swarmTask;
const passing = passingInstance;

Deno.test("scale down waits until Swarm runs exactly the desired tasks, showing the draining ones", async () => {
  // Swarm's view before the scale, then after it, one poll at a time: the removed tasks drain
  // (desired shutdown, still running) before they exit.
  const before = [
    swarmService("echo-agent", 3, [
      task("a", "running"),
      task("b", "running"),
      task("c", "running"),
    ]),
    swarmService("weather-tool", 2, [task("d", "running"), task("e", "running")]),
  ];
  const after = [
    [
      swarmService("echo-agent", 1, [
        task("a", "running"),
        task("b", "running", "shutdown"),
        task("c", "running", "shutdown"),
      ]),
      swarmService("weather-tool", 1, [task("d", "running"), task("e", "running", "shutdown")]),
    ],
    [
      swarmService("echo-agent", 1, [
        task("a", "running"),
        task("b", "running", "shutdown"),
        task("c", "shutdown", "shutdown"),
      ]),
      swarmService("weather-tool", 1, [task("d", "running"), task("e", "shutdown", "shutdown")]),
    ],
    [
      swarmService("echo-agent", 1, [
        task("a", "running"),
        task("b", "shutdown", "shutdown"),
        task("c", "shutdown", "shutdown"),
      ]),
      swarmService("weather-tool", 1, [task("d", "running"), task("e", "shutdown", "shutdown")]),
    ],
  ];
  let scaled = false;
  let polls = 0;
  const run = fakeContext({
    flags: { json: true },
    services: [ECHO, WEATHER],
    docker: {
      services: () => Promise.resolve(scaled ? after[Math.min(polls++, after.length - 1)] : before),
      scale: () => {
        scaled = true;
        return Promise.resolve();
      },
    },
    consul: {
      ready: () => Promise.resolve(true),
      // The drained instances deregistered at SIGTERM; the kept ones pass.
      instances: () =>
        Promise.resolve([
          passing("echo-agent", "agent-echo", "a"),
          passing("weather-tool", "tool-weather", "d"),
        ]),
    },
  });

  await scaleCommand(run.context, "down", undefined, {});

  const scale = run.calls.find((call) => call.name === "docker.scale");
  assert.deepEqual(scale?.args, [{ "st_echo-agent": 1, "st_weather-tool": 1 }]);
  // It polled until the last draining task exited, and said what it waited for.
  assert.equal(polls, 3);
  const progress = run.stderr.join("");
  assert.match(progress, /echo-agent: 1\/1 running, 2 draining, 1\/1 passing/);
  assert.match(progress, /echo-agent: 1\/1 running, 1 draining, 1\/1 passing/);
  const result = JSON.parse(run.stdout.join(""));
  assert.deepEqual(
    // deno-lint-ignore no-explicit-any
    result.services.map((entry: any) => [entry.service, entry.running, entry.draining]),
    [["echo-agent", 1, 0], ["weather-tool", 1, 0]],
  );
  // deno-lint-ignore no-explicit-any
  assert.ok(result.services.every((entry: any) => entry.converged));
});

Deno.test("scale --dry-run reads Swarm and changes nothing", async () => {
  const run = fakeContext({
    flags: { json: true },
    services: [ECHO],
    docker: {
      services: () => Promise.resolve([swarmService("echo-agent", 1, [task("a", "running")])]),
    },
  });
  await scaleCommand(run.context, "echo", "3", { dryRun: true });
  assert.deepEqual(run.names(), ["docker.services"]);
  assert.deepEqual(JSON.parse(run.stdout.join("")), {
    dryRun: true,
    actions: [{ service: "echo-agent", from: 1, to: 3 }],
  });
});
