import assert from "node:assert/strict";
import { planAcls, planTokenActions, platformAclInput } from "./consul_acl.ts";
import { PLATFORM_SERVICES } from "./services.ts";

const plan = planAcls(platformAclInput("agent-platform", { services: PLATFORM_SERVICES }));

Deno.test("planAcls() gives each service an identity of its own name and the weights to read", () => {
  const byProgram = Object.fromEntries(plan.tokens.map((token) => [token.program, token]));
  // One token a program: two with one description would make every run update one of them.
  assert.equal(new Set(plan.tokens.map((token) => token.description)).size, plan.tokens.length);
  assert.deepEqual(Object.keys(byProgram).sort(), [
    "agent",
    "agent-echo",
    "lb",
    "mcp-router",
    "platform-autoscaler",
    "probe",
    "prometheus",
    "tool-weather",
    "worker-itinerary",
  ]);
  assert.deepEqual(byProgram["platform-autoscaler"].serviceIdentities, ["platform-autoscaler"]);
  assert.deepEqual(byProgram.prometheus.policies, ["agent-platform-catalog-read"]);
  assert.deepEqual(byProgram.probe.policies, ["agent-platform-catalog-read"]);
  for (const service of ["agent-echo", "tool-weather", "worker-itinerary"]) {
    assert.deepEqual(byProgram[service].serviceIdentities, [service]);
    assert.deepEqual(byProgram[service].policies, ["agent-platform-weights-read"]);
  }
  assert.deepEqual(byProgram["mcp-router"].serviceIdentities, ["mcp-router"]);
  assert.deepEqual(byProgram["mcp-router"].policies, [
    "agent-platform-router",
    "agent-platform-weights-read",
  ]);
  assert.deepEqual(byProgram.lb.serviceIdentities, []);
  assert.equal(new Set(plan.tokens.map((token) => token.program)).size, plan.tokens.length);
});

Deno.test("planAcls() keeps lb read-only and the routers' writes to their own KV prefix", () => {
  const rules = Object.fromEntries(plan.policies.map((policy) => [policy.name, policy.rules]));
  assert.doesNotMatch(rules["agent-platform-catalog-read"], /write/);
  assert.match(rules["agent-platform-autoscaler"], /key_prefix "platform\/autoscaler\/"/);
  assert.equal(
    rules["agent-platform-weights-read"],
    'key_prefix "platform/weights/" {\n  policy = "read"\n}\n',
  );
  const router = rules["agent-platform-router"];
  const writes = [...router.matchAll(/key_prefix "([^"]*)" \{\s*policy = "write"/g)].map((m) =>
    m[1]
  );
  assert.deepEqual(writes, ["platform/mcp-router/"]);
  assert.doesNotMatch(router, /service_prefix "" \{\s*policy = "write"/);
});

Deno.test("planAcls() refuses a KV prefix that could widen a rule", () => {
  assert.throws(
    () =>
      planAcls({ ...platformAclInput("s", { services: PLATFORM_SERVICES }), routerKvPrefix: "" }),
    RangeError,
  );
  assert.throws(
    () =>
      planAcls({
        ...platformAclInput("s", { services: PLATFORM_SERVICES }),
        routerKvPrefix: 'a" {',
      }),
    RangeError,
  );
});

Deno.test("planTokenActions() creates the missing, updates the changed, keeps the rest", () => {
  const [echo, lb] = [
    plan.tokens.find((token) => token.program === "agent-echo")!,
    plan.tokens.find((token) => token.program === "lb")!,
  ];
  const actions = planTokenActions([echo, lb], [
    {
      accessorId: "a1",
      description: echo.description,
      policies: ["agent-platform-weights-read"],
      serviceIdentities: ["agent-echo"],
    },
    { accessorId: "a2", description: lb.description, policies: [], serviceIdentities: [] },
  ]);
  assert.deepEqual(actions.map((action) => action.kind), ["keep", "update"]);
  assert.equal(planTokenActions([echo], [])[0].kind, "create");
});
