import assert from "node:assert/strict";
import { parseServiceHealth } from "../services/runtime/consul/health.ts";
import { assignSlots, buildLbModel, slotCount, toInstance as fromInstance } from "./model.ts";
import { entry, GOLDEN_SETTINGS } from "./testdata/fixtures.ts";

function toInstance(raw: ReturnType<typeof entry>) {
  return fromInstance(parseServiceHealth([raw], raw.Service.Service).instances[0]);
}

Deno.test("toInstance() takes the weight for the health and clamps it to HAProxy's range", () => {
  assert.equal(toInstance(entry("a", 1, { weights: { Passing: 3, Warning: 1 } })).weight, 3);
  assert.equal(
    toInstance(entry("a", 1, { status: "warning", weights: { Passing: 3, Warning: 1 } })).weight,
    1,
  );
  assert.equal(toInstance(entry("a", 1, { weights: { Passing: 1000, Warning: 1 } })).weight, 256);
});

Deno.test("slotCount() doubles past the minimum", () => {
  assert.equal(slotCount(0, 16), 16);
  assert.equal(slotCount(16, 16), 16);
  assert.equal(slotCount(17, 16), 32);
});

Deno.test("assignSlots() keeps instances in their slots and fills free ones in ID order", () => {
  const first = assignSlots("r", [toInstance(entry("b", 2)), toInstance(entry("a", 1))], {
    minSlots: 4,
  });
  assert.deepEqual(first.map((slot) => slot.instance?.id ?? null), ["a", "b", null, null]);
  const second = assignSlots("r", [toInstance(entry("c", 3)), toInstance(entry("b", 2))], {
    previous: first,
    minSlots: 4,
  });
  assert.deepEqual(second.map((slot) => [slot.instance?.id ?? null, slot.state]), [
    ["a", "drain"],
    ["b", "ready"],
    ["c", "ready"],
    [null, "empty"],
  ]);
});

Deno.test("buildLbModel() refuses an exposure on a port another frontend holds", () => {
  const settings = { ...GOLDEN_SETTINGS, mcpPort: 8080, statsPort: 8404 };
  const model = buildLbModel({
    routers: [],
    services: {
      alpha: [entry("alpha-1", 50051, { service: "alpha", meta: { lb_port: "9101" } })],
      beta: [entry("beta-1", 50052, { service: "beta", meta: { lb_port: "9101" } })],
      gamma: [entry("gamma-1", 50053, { service: "gamma", meta: { lb_port: "8080" } })],
      delta: [entry("delta-1", 50054, { service: "delta", meta: { lb_port: "8404" } })],
      omega: [entry("omega-1", 50055, { service: "omega", meta: { lb_port: "9102" } })],
    },
  }, settings);
  assert.deepEqual(model.exposed.map((backend) => [backend.service, backend.port]), [
    ["alpha", 9101],
    ["omega", 9102],
  ]);
  assert.deepEqual(model.refused, [
    { service: "beta", port: 9101, heldBy: "alpha" },
    { service: "delta", port: 8404, heldBy: "stats" },
    { service: "gamma", port: 8080, heldBy: "mcp" },
  ]);
});

Deno.test("buildLbModel() leaves out hostile Consul entries and lists why", () => {
  const hostile = [
    {
      ...entry("evil-addr", 9001),
      Service: {
        ...entry("x", 9001).Service,
        ID: "evil-addr",
        Address: "127.0.0.2;shutdown frontend mcp;",
      },
    },
    {
      ...entry("x", 9002),
      Service: { ...entry("x", 9002).Service, ID: "x\n  server evil 10.6.6.6:80" },
    },
  ];
  const model = buildLbModel({
    routers: [...hostile, entry("router-1", 9000)],
    services: { "../../catalog/nodes": [entry("y", 1, { service: "../../catalog/nodes" })] },
  }, GOLDEN_SETTINGS);
  assert.deepEqual(
    model.mcp.slots.filter((slot) => slot.instance).map((slot) => slot.instance!.id),
    ["router-1"],
  );
  assert.deepEqual(model.rejected.map((rejected) => rejected.reason.split(" ")[0]), [
    "address",
    "service",
    "service",
  ]);
});
