import assert from "node:assert/strict";
import {
  consulSecretNames,
  deriveConsulSecrets,
  isConsulToken,
  MANAGEMENT_TOKEN_PATH,
  managementTokenPath,
  newManagementToken,
  SECRET_TOKEN_PROGRAMS,
} from "./consul_secrets.ts";
import { isGossipKey } from "./gossip_key.ts";

const MANAGEMENT = "5f0c7d1e-3b2a-4c6d-9e8f-0a1b2c3d4e5f";

Deno.test("deriveConsulSecrets() gives each program its own token, the same every time", async () => {
  const programs = ["agent-echo", "lb", "agent", "probe"];
  const first = await deriveConsulSecrets(MANAGEMENT, programs);
  assert.deepEqual(await deriveConsulSecrets(MANAGEMENT, [...programs].reverse()), first);
  assert.deepEqual(Object.keys(first.tokens), ["agent", "agent-echo", "lb", "probe"]);
  const values = [...Object.values(first.tokens), first.agentRecoveryToken];
  for (const token of values) assert.ok(isConsulToken(token), token);
  assert.equal(new Set([...values, MANAGEMENT]).size, values.length + 1);
  assert.ok(isGossipKey(first.gossipKey));
  assert.equal(atob(first.gossipKey).length, 32);
  // Version 4, variant 1: Consul and everyone else read them as random UUIDs.
  assert.match(first.tokens.lb, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-/);
});

Deno.test("deriveConsulSecrets() changes every value with the management token", async () => {
  const a = await deriveConsulSecrets(MANAGEMENT, ["lb"]);
  const b = await deriveConsulSecrets(newManagementToken(), ["lb"]);
  assert.notEqual(a.tokens.lb, b.tokens.lb);
  assert.notEqual(a.gossipKey, b.gossipKey);
  assert.notEqual(a.agentRecoveryToken, b.agentRecoveryToken);
});

Deno.test("deriveConsulSecrets() refuses a management token that is not a UUID", async () => {
  await assert.rejects(() => deriveConsulSecrets("root", ["lb"]), RangeError);
  await assert.rejects(() => deriveConsulSecrets(MANAGEMENT.toUpperCase(), ["lb"]), RangeError);
});

Deno.test("managementTokenPath() keeps the default stack's path and separates the others", () => {
  assert.equal(managementTokenPath("agent-platform"), MANAGEMENT_TOKEN_PATH);
  assert.equal(MANAGEMENT_TOKEN_PATH, ".platform/secrets/consul-management-token");
  assert.equal(
    managementTokenPath("ap-e2e"),
    ".platform/secrets/ap-e2e/consul-management-token",
  );
});

Deno.test("consulSecretNames() names one secret per program, under the stack", () => {
  const names = consulSecretNames("st");
  assert.equal(names.managementToken, "st_consul-management-token");
  assert.equal(names.gossipKey, "st_consul-gossip-key");
  assert.deepEqual(Object.keys(names.tokens), [...SECRET_TOKEN_PROGRAMS]);
  assert.equal(names.tokens["mcp-router"], "st_consul-token-mcp-router");
  assert.ok(!SECRET_TOKEN_PROGRAMS.includes("probe"));
});

Deno.test("deriveConsulSecrets() derives the front door's credentials too", async () => {
  const a = await deriveConsulSecrets(MANAGEMENT, ["lb"]);
  assert.match(a.mcpClientToken, /^[A-Za-z0-9_-]{43}$/);
  assert.match(a.statsPassword, /^[A-Za-z0-9_-]{32}$/);
  assert.notEqual(a.mcpClientToken.slice(0, 32), a.statsPassword);
  const b = await deriveConsulSecrets(newManagementToken(), ["lb"]);
  assert.notEqual(a.mcpClientToken, b.mcpClientToken);
});
