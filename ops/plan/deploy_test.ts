import assert from "node:assert/strict";
import { describeDeployAction, planDeploy } from "./deploy.ts";
import { PLATFORM_SERVICES } from "./services.ts";
import type { SwarmService } from "./state.ts";

function swarm(name: string, image: string, replicas: number): SwarmService {
  return { id: name, name, fullName: `s_${name}`, replicas, global: false, image, tasks: [] };
}

const IMAGES = {
  consul: "p/consul:c",
  "consul-agent": "p/consul:c",
  "echo-agent": "p/echo-agent:e2",
  "weather-tool": "p/weather-tool:w",
  "itinerary-worker": "p/itinerary-worker:i",
  "mcp-router": "p/mcp-router:r",
  lb: "p/lb:l",
  prometheus: "p/prometheus:p",
  autoscaler: "p/autoscaler:a",
};

Deno.test("planDeploy() creates every service of an empty stack", () => {
  const actions = planDeploy(PLATFORM_SERVICES, IMAGES, []);
  assert.deepEqual(actions.map((action) => action.action), [
    "create",
    "create",
    "create",
    "create",
    "create",
    "create",
    "create",
    "create",
    "create",
  ]);
  assert.equal(actions.every((action) => action.replicas === undefined), true);
});

Deno.test("planDeploy() updates only changed images and keeps scaled replica counts", () => {
  const actual = [
    swarm("consul", "p/consul:c", 1),
    swarm("echo-agent", "p/echo-agent:e1", 3),
    swarm("weather-tool", "p/weather-tool:w", 2),
  ];
  const actions = planDeploy(PLATFORM_SERVICES, IMAGES, actual);
  assert.deepEqual(actions, [
    {
      service: "consul",
      action: "unchanged",
      image: "p/consul:c",
      from: "p/consul:c",
      // Consul servers and global services take their count from the stack file.
      replicas: undefined,
    },
    { service: "consul-agent", action: "create", image: "p/consul:c" },
    {
      service: "echo-agent",
      action: "update",
      image: "p/echo-agent:e2",
      from: "p/echo-agent:e1",
      replicas: 3,
    },
    {
      service: "weather-tool",
      action: "unchanged",
      image: "p/weather-tool:w",
      from: "p/weather-tool:w",
      replicas: 2,
    },
    { service: "itinerary-worker", action: "create", image: "p/itinerary-worker:i" },
    { service: "mcp-router", action: "create", image: "p/mcp-router:r" },
    { service: "lb", action: "create", image: "p/lb:l" },
    { service: "prometheus", action: "create", image: "p/prometheus:p" },
    { service: "autoscaler", action: "create", image: "p/autoscaler:a" },
  ]);
  assert.match(
    describeDeployAction(actions[2]),
    /^~ echo-agent: p\/echo-agent:e1 -> p\/echo-agent:e2/,
  );
});
