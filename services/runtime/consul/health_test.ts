import assert from "node:assert/strict";
import { healthOf, parseCatalogServices, parseServiceHealth } from "./health.ts";

function entry(service: Record<string, unknown>, checks: [string, string][] = [], node = {}) {
  return {
    Node: { Node: "node-1", Address: "10.0.0.9", ...node },
    Service: { ID: "echo-1", Service: "agent-echo", Address: "10.0.1.1", Port: 50052, ...service },
    Checks: checks.map(([CheckID, Status]) => ({ CheckID, Status })),
  };
}

Deno.test("parseServiceHealth() reads a valid entry, with the node's address as fallback", () => {
  const { instances, rejected } = parseServiceHealth([
    entry({ ID: "b", Address: "", Tags: ["platform"], Meta: { version: "1" } }),
    entry({ ID: "a", Weights: { Passing: 3, Warning: 1 } }),
  ], "agent-echo");
  assert.deepEqual(rejected, []);
  assert.deepEqual(instances.map((i) => [i.id, i.address, i.weights.passing]), [
    ["a", "10.0.1.1", 3],
    ["b", "10.0.0.9", 1],
  ]);
  assert.deepEqual(instances[1].meta, { version: "1" });
  assert.equal(instances[0].node, "node-1");
});

Deno.test("parseServiceHealth() refuses hostile entries and keeps the rest", async (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      "a runtime API command in the address",
      { Address: "127.0.0.2;shutdown frontend mcp;" },
      /address/,
    ],
    ["a host name", { Address: "evil.example" }, /address/],
    ["a newline in the ID", { ID: "x\n  server evil 10.0.0.66:80" }, /service ID/],
    ["a path in the ID", { ID: "../../x" }, /service ID/],
    ["a port out of range", { Port: 70000 }, /port/],
    ["a port as text", { Port: "80" }, /port/],
    ["another service's entry", { Service: "mcp-router" }, /service name/],
    ["weights that are not integers", { Weights: { Passing: 1.5, Warning: 1 } }, /weights/],
    ["meta with a bad key", { Meta: { "a b": "x" } }, /meta/],
    ["tags that are not strings", { Tags: [1] }, /tags/],
  ];
  for (const [name, fields, reason] of cases) {
    await t.step(name, () => {
      const { instances, rejected } = parseServiceHealth([
        entry(fields),
        entry({ ID: "good" }),
      ], "agent-echo");
      assert.deepEqual(instances.map((i) => i.id), ["good"]);
      assert.equal(rejected.length, 1);
      assert.match(rejected[0].reason, reason);
    });
  }
  await t.step("IPv6 literals pass", () => {
    const { instances } = parseServiceHealth([entry({ Address: "fd00::1" })], "agent-echo");
    assert.equal(instances[0].address, "fd00::1");
  });
  await t.step("a duplicate ID is refused", () => {
    const { instances, rejected } = parseServiceHealth([entry({}), entry({})], "agent-echo");
    assert.equal(instances.length, 1);
    assert.match(rejected[0].reason, /duplicate/);
  });
  await t.step("a body that is not a list throws", () => {
    assert.throws(() => parseServiceHealth({}, "agent-echo"), TypeError);
  });
});

Deno.test("healthOf() has one definition of passing, warning, critical and maintenance", async (t) => {
  const cases: [string, [string, string][], string][] = [
    ["no checks", [], "passing"],
    ["all passing", [["serfHealth", "passing"], ["service:a", "passing"]], "passing"],
    ["one warning", [["serfHealth", "passing"], ["service:a", "warning"]], "warning"],
    ["critical wins over warning", [["service:a", "warning"], ["other", "critical"]], "critical"],
    ["a critical node (serfHealth) makes the instance critical", [
      ["serfHealth", "critical"],
      ["service:a", "passing"],
    ], "critical"],
    ["an unknown status is not passing", [["service:a", "weird"]], "critical"],
    ["service maintenance wins", [["_service_maintenance:a", "critical"]], "maintenance"],
    [
      "node maintenance wins",
      [["service:a", "passing"], ["_node_maintenance", "critical"]],
      "maintenance",
    ],
  ];
  for (const [name, checks, expected] of cases) {
    await t.step(name, () => {
      assert.equal(healthOf(checks.map(([CheckID, Status]) => ({ CheckID, Status }))), expected);
    });
  }
});

Deno.test("parseCatalogServices() refuses names that are not plain names", () => {
  const { services, rejected } = parseCatalogServices({
    "../../catalog/nodes": ["platform"],
    "agent-echo": ["platform", "agent"],
    "a b": [],
  });
  assert.deepEqual([...services.keys()], ["agent-echo"]);
  assert.equal(rejected.length, 2);
});
