import assert from "node:assert/strict";
import { buildLbModel, type ConsulSnapshot, releaseDrained } from "./model.ts";
import { entry, GOLDEN_SETTINGS } from "./testdata/fixtures.ts";
import { drainingServers, planLbSync } from "./sync_plan.ts";

const settings = GOLDEN_SETTINGS;

function routers(...entries: ReturnType<typeof entry>[]): ConsulSnapshot {
  return { routers: entries, services: {} };
}

Deno.test("planLbSync() adds routers through the runtime API, no reload", () => {
  const one = buildLbModel(routers(entry("a", 9001)), settings);
  const three = buildLbModel(
    routers(entry("a", 9001), entry("b", 9002), entry("c", 9003)),
    settings,
    {
      previous: one,
    },
  );
  const plan = planLbSync(one, three);
  assert.equal(plan.kind, "runtime");
  assert.ok(plan.kind === "runtime");
  assert.equal(plan.urgent, false);
  assert.deepEqual(plan.commands, [
    "set server mcp-router/r2 addr 127.0.0.1 port 9002",
    "set server mcp-router/r2 weight 1",
    "set server mcp-router/r2 state ready",
    "set server mcp-router/r2 health up",
    "set server mcp-router/r3 addr 127.0.0.1 port 9003",
    "set server mcp-router/r3 weight 1",
    "set server mcp-router/r3 state ready",
    "set server mcp-router/r3 health up",
  ]);
});

Deno.test("planLbSync() puts a critical router in maint at once and brings it back", async (t) => {
  const healthy = buildLbModel(routers(entry("a", 9001), entry("b", 9002)), settings);
  const critical = buildLbModel(
    routers(entry("a", 9001), entry("b", 9002, { status: "critical" })),
    settings,
    { previous: healthy },
  );
  await t.step("critical", () => {
    assert.deepEqual(planLbSync(healthy, critical), {
      kind: "runtime",
      commands: ["set server mcp-router/r2 state maint"],
      urgent: true,
    });
  });
  await t.step("passing again", () => {
    const back = buildLbModel(routers(entry("a", 9001), entry("b", 9002)), settings, {
      previous: critical,
    });
    assert.deepEqual(planLbSync(critical, back), {
      kind: "runtime",
      commands: ["set server mcp-router/r2 state ready", "set server mcp-router/r2 health up"],
      urgent: false,
    });
  });
  await t.step("maintenance", () => {
    const maintenance = buildLbModel(
      routers(entry("a", 9001), entry("b", 9002, { maintenance: true })),
      settings,
      { previous: healthy },
    );
    assert.equal(maintenance.mcp.slots[1].state, "maint");
    assert.deepEqual(planLbSync(healthy, maintenance), {
      kind: "runtime",
      commands: ["set server mcp-router/r2 state maint"],
      urgent: true,
    });
  });
});

Deno.test("planLbSync() drains a router that left Consul, then frees its slot", () => {
  const two = buildLbModel(routers(entry("a", 9001), entry("b", 9002)), settings);
  const left = buildLbModel(routers(entry("a", 9001)), settings, { previous: two });
  assert.equal(left.mcp.slots[1].state, "drain");
  assert.deepEqual(planLbSync(two, left), {
    kind: "runtime",
    commands: ["set server mcp-router/r2 state drain"],
    urgent: true,
  });
  assert.deepEqual([...drainingServers(left)], [["mcp-router/r2", "b"]]);
  const freed = releaseDrained(left, new Set(["b"]));
  assert.equal(freed.mcp.slots[1].state, "empty");
  assert.deepEqual(planLbSync(left, freed), {
    kind: "runtime",
    commands: ["set server mcp-router/r2 state maint"],
    urgent: true,
  });
  // The next newcomer takes the freed slot.
  const next = buildLbModel(routers(entry("a", 9001), entry("d", 9004)), settings, {
    previous: freed,
  });
  assert.equal(next.mcp.slots[1].instance?.id, "d");
});

Deno.test("planLbSync() changes weights and addresses in place", () => {
  const before = buildLbModel(routers(entry("a", 9001)), settings);
  const weighted = buildLbModel(
    routers(entry("a", 9001, { weights: { Passing: 7, Warning: 1 } })),
    settings,
    { previous: before },
  );
  assert.deepEqual(planLbSync(before, weighted), {
    kind: "runtime",
    commands: ["set server mcp-router/r1 weight 7"],
    urgent: false,
  });
  const moved = buildLbModel(routers(entry("a", 9011)), settings, { previous: before });
  assert.deepEqual(planLbSync(before, moved), {
    kind: "runtime",
    commands: [
      "set server mcp-router/r1 state maint",
      "set server mcp-router/r1 addr 127.0.0.1 port 9011",
      "set server mcp-router/r1 weight 1",
      "set server mcp-router/r1 state ready",
      "set server mcp-router/r1 health up",
    ],
    urgent: true,
  });
});

Deno.test("planLbSync() reloads for structural changes only", async (t) => {
  const base = buildLbModel(routers(entry("a", 9001)), settings);
  await t.step("nothing changed", () => {
    assert.deepEqual(planLbSync(base, buildLbModel(routers(entry("a", 9001)), settings)), {
      kind: "none",
    });
  });
  await t.step("balance", () => {
    const next = buildLbModel(routers(entry("a", 9001)), { ...settings, balance: "leastconn" });
    assert.deepEqual(planLbSync(base, next), { kind: "reload", reasons: ["settings changed"] });
  });
  await t.step("more routers than slots", () => {
    const many = Array.from({ length: settings.minSlots + 1 }, (_, i) => entry(`r${i}`, 9000 + i));
    const next = buildLbModel(routers(...many), settings, { previous: base });
    assert.equal(next.mcp.slots.length, settings.minSlots * 2);
    assert.deepEqual(planLbSync(base, next), {
      kind: "reload",
      reasons: ['backend "mcp-router" changed'],
    });
  });
  await t.step("a service asks to be exposed", () => {
    const next = buildLbModel(
      {
        routers: [entry("a", 9001)],
        services: { echo: [entry("e1", 50051, { service: "echo", meta: { lb_port: "9101" } })] },
      },
      settings,
      { previous: base },
    );
    assert.deepEqual(planLbSync(base, next), {
      kind: "reload",
      reasons: ['backend "svc_echo" added'],
    });
  });
});
