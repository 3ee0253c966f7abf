import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import { parseReplicas, parseScaleArgs, planScale } from "./scale.ts";
import { PLATFORM_SERVICES } from "./services.ts";
import type { SwarmService } from "./state.ts";

function swarm(name: string, replicas: number): SwarmService {
  return { id: name, name, fullName: `s_${name}`, replicas, global: false, image: "i", tasks: [] };
}

const ACTUAL = [
  swarm("consul", 1),
  swarm("echo-agent", 1),
  swarm("weather-tool", 2),
  swarm("itinerary-worker", 1),
  swarm("mcp-router", 2),
  swarm("lb", 1),
];

function isUsage(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.equal(error.exitCode, 2);
    assert.match(error.message, pattern);
    return true;
  };
}

Deno.test("parseReplicas() accepts 0..50 and rejects the rest", async (t) => {
  assert.equal(parseReplicas("0"), 0);
  assert.equal(parseReplicas("3"), 3);
  for (const bad of ["-1", "x", "1.5", "", "51"]) {
    await t.step(`"${bad}" is a usage error`, () => {
      assert.throws(() => parseReplicas(bad), isUsage(/Invalid replica count/));
    });
  }
});

Deno.test("planScale() scales one service", () => {
  const request = parseScaleArgs("echo", "3", PLATFORM_SERVICES);
  assert.deepEqual(planScale(request, ACTUAL), [{ service: "echo-agent", from: 1, to: 3 }]);
});

Deno.test("planScale() scales all platform services but not Consul or the load balancer, skipping those already there", () => {
  const request = parseScaleArgs("all", "2", PLATFORM_SERVICES);
  assert.deepEqual(planScale(request, ACTUAL), [
    { service: "echo-agent", from: 1, to: 2 },
    { service: "itinerary-worker", from: 1, to: 2 },
  ]);
});

Deno.test("planScale() scale down puts every platform service at one replica", () => {
  const request = parseScaleArgs("down", undefined, PLATFORM_SERVICES);
  assert.deepEqual(planScale(request, ACTUAL), [
    { service: "weather-tool", from: 2, to: 1 },
    { service: "mcp-router", from: 2, to: 1 },
  ]);
});

Deno.test("planScale() scales the routers by their short name", () => {
  const request = parseScaleArgs("router", "3", PLATFORM_SERVICES);
  assert.deepEqual(planScale(request, ACTUAL), [{ service: "mcp-router", from: 2, to: 3 }]);
});

Deno.test("parseScaleArgs() rejects bad requests with usage errors", async (t) => {
  const cases: [string, string | undefined, RegExp][] = [
    ["nope", "1", /Unknown service "nope"/],
    ["echo", undefined, /Missing replica count/],
    ["echo", "-2", /Invalid replica count "-2"/],
    ["down", "2", /takes no count/],
    ["consul", "3", /exactly one replica/],
    ["lb", "2", /exactly one replica/],
  ];
  for (const [target, count, pattern] of cases) {
    await t.step(`scale ${target} ${count ?? ""}`, () => {
      assert.throws(() => parseScaleArgs(target, count, PLATFORM_SERVICES), isUsage(pattern));
    });
  }
});

Deno.test("planScale() says to deploy first when the service is missing", () => {
  const request = parseScaleArgs("echo", "2", PLATFORM_SERVICES);
  assert.throws(() => planScale(request, []), isUsage(/not deployed/));
});
