import assert from "node:assert/strict";
import { parseStatsCredentials, sessionKeySecretName, statsAuthSecretName } from "./secrets.ts";

Deno.test("sessionKeySecretName() is one name per stack", () => {
  assert.equal(sessionKeySecretName("agent-platform"), "agent-platform_router-session-key");
});

Deno.test("statsAuthSecretName() changes with the credentials, not their spelling in the name", () => {
  const a = statsAuthSecretName("st", "ops:one");
  assert.match(a, /^st_lb-stats-auth-[0-9a-f]{12}$/);
  assert.equal(a, statsAuthSecretName("st", "ops:one"));
  assert.notEqual(a, statsAuthSecretName("st", "ops:two"));
  assert.doesNotMatch(a, /one/);
});

Deno.test("parseStatsCredentials() takes one user:password line", async (t) => {
  assert.equal(parseStatsCredentials("ops:s3cret\n", "f"), "ops:s3cret");
  for (const bad of ["", "nopassword", ":x", "x:", "a:b\nc:d"]) {
    await t.step(JSON.stringify(bad), () => {
      assert.throws(() => parseStatsCredentials(bad, "f"), /Invalid stats credentials in "f"/);
    });
  }
});
