import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import {
  consulRegistered,
  PLATFORM_SERVICES,
  resolveService,
  scalableServices,
  swarmServiceName,
  withOptional,
} from "./services.ts";

Deno.test("resolveService() accepts short, Swarm and Consul names", async (t) => {
  const cases: [string, string][] = [
    ["echo", "echo-agent"],
    ["echo-agent", "echo-agent"],
    ["agent-echo", "echo-agent"],
    ["Weather", "weather-tool"],
    ["itinerary", "itinerary-worker"],
    ["worker-itinerary", "itinerary-worker"],
    ["consul", "consul"],
    ["router", "mcp-router"],
    ["mcp-router", "mcp-router"],
    ["lb", "lb"],
    ["haproxy", "lb"],
  ];
  for (const [input, expected] of cases) {
    await t.step(`"${input}" is ${expected}`, () => {
      assert.equal(resolveService(input).name, expected);
    });
  }
});

Deno.test("resolveService() rejects an unknown name with a usage error", () => {
  assert.throws(() => resolveService("nope"), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, /Unknown service "nope"/);
    return true;
  });
});

Deno.test("scalableServices() leaves the single Consul server and the load balancer out", () => {
  assert.deepEqual(scalableServices().map((service) => service.name), [
    "echo-agent",
    "weather-tool",
    "itinerary-worker",
    "mcp-router",
  ]);
});

Deno.test("consulRegistered() lists the services Consul checks", () => {
  assert.deepEqual(consulRegistered().map((service) => service.consulName), [
    "agent-echo",
    "tool-weather",
    "worker-itinerary",
    "mcp-router",
    "platform-autoscaler",
  ]);
});

Deno.test("swarmServiceName() prefixes the stack", () => {
  assert.equal(
    swarmServiceName("agent-platform", resolveService("echo")),
    "agent-platform_echo-agent",
  );
});

Deno.test("withOptional() adds the optional services asked for, by any of their names", () => {
  const names = (services: readonly { name: string }[]) => services.map((service) => service.name);
  assert.deepEqual(names(withOptional([])), names(PLATFORM_SERVICES));
  assert.deepEqual(names(withOptional(["conformance"])), [
    ...names(PLATFORM_SERVICES),
    "conformance-server",
  ]);
  assert.deepEqual(withOptional(["tool-conformance"]), withOptional(["conformance-server"]));
  assert.throws(
    () => withOptional(["echo"]),
    (error: Error) => error instanceof UsageError && error.message.includes('"conformance-server"'),
  );
});
