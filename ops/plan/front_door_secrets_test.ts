import assert from "node:assert/strict";
import {
  MCP_TOKEN_PATH,
  mcpTokenPath,
  mcpTokensSecretName,
  parseTokenLines,
  planFrontDoorSecrets,
  STATS_AUTH_PATH,
  statsAuthPath,
} from "./front_door_secrets.ts";
import { statsAuthSecretName } from "./secrets.ts";

const DERIVED = {
  mcpClientToken: "dErIvEd-ToKeN_0123456789abcdefghijklmnopqrs",
  statsPassword: "derived-stats-password",
};
const BASE = { stack: "st", noAuth: false, derived: DERIVED };

Deno.test("planFrontDoorSecrets() makes both credentials on the first deploy and says where", () => {
  const plan = planFrontDoorSecrets(BASE);
  assert.deepEqual(plan.mcpTokens, {
    name: mcpTokensSecretName("st", `${DERIVED.mcpClientToken}\n`),
    value: `${DERIVED.mcpClientToken}\n`,
    source: "new",
  });
  assert.deepEqual(plan.statsAuth, {
    name: statsAuthSecretName("st", "platform:derived-stats-password"),
    value: "platform:derived-stats-password",
    source: "new",
  });
  assert.deepEqual(plan.files.map((file) => [file.path, file.text]), [
    [".platform/secrets/st/mcp-token", `${DERIVED.mcpClientToken}\n`],
    [".platform/secrets/st/lb-stats-auth", "platform:derived-stats-password\n"],
  ]);
  assert.match(
    plan.files[0].note,
    /wrote the MCP client token to ".platform\/secrets\/st\/mcp-token"/,
  );
  // Never the value itself in what is printed.
  for (const file of plan.files) assert.doesNotMatch(file.note, /dErIvEd|derived-stats/);
});

Deno.test("planFrontDoorSecrets() uses the kept files and writes nothing on later deploys", () => {
  const kept = "kept-token-0123456789abcdef";
  const plan = planFrontDoorSecrets({
    ...BASE,
    keptToken: { file: "k", text: `${kept}\n` },
    keptStatsAuth: { file: "s", text: "ops:pw\n" },
  });
  assert.equal(plan.mcpTokens?.value, `${kept}\n`);
  assert.equal(plan.mcpTokens?.source, "kept");
  assert.equal(plan.statsAuth.value, "ops:pw");
  assert.equal(plan.statsAuth.source, "kept");
  assert.deepEqual(plan.files, []);
});

Deno.test("planFrontDoorSecrets() prefers what the operator gives", () => {
  const tokens = "# clients\nfirst-token-0123456789\n\nsecond-token-0123456789\n";
  const plan = planFrontDoorSecrets({
    ...BASE,
    givenTokens: { file: "given", text: tokens },
    keptToken: { file: "k", text: "kept-token-0123456789abcdef\n" },
    givenStatsAuth: { file: "g", text: "admin:secret" },
    keptStatsAuth: { file: "s", text: "ops:pw\n" },
  });
  assert.equal(plan.mcpTokens?.value, "first-token-0123456789\nsecond-token-0123456789\n");
  assert.equal(plan.mcpTokens?.source, "given");
  assert.equal(plan.statsAuth.value, "admin:secret");
  assert.deepEqual(plan.files, []);
});

Deno.test("planFrontDoorSecrets() with --no-auth makes no token but keeps the stats credentials", () => {
  const plan = planFrontDoorSecrets({ ...BASE, noAuth: true });
  assert.equal(plan.mcpTokens, undefined);
  assert.equal(plan.statsAuth.source, "new");
  assert.deepEqual(plan.files.map((file) => file.path), [".platform/secrets/st/lb-stats-auth"]);
  assert.throws(
    () => planFrontDoorSecrets({ ...BASE, noAuth: true, givenTokens: { file: "t", text: "x" } }),
    /--no-auth contradicts PLATFORM_MCP_TOKENS_FILE "t"/,
  );
});

Deno.test("planFrontDoorSecrets() names a new secret when a value changes", () => {
  const a = planFrontDoorSecrets({
    ...BASE,
    keptToken: { file: "k", text: "a-token-0123456789abc" },
  });
  const b = planFrontDoorSecrets({
    ...BASE,
    keptToken: { file: "k", text: "b-token-0123456789abc" },
  });
  assert.match(a.mcpTokens!.name, /^st_mcp-tokens-[0-9a-f]{12}$/);
  assert.notEqual(a.mcpTokens!.name, b.mcpTokens!.name);
  assert.equal(a.statsAuth.name, b.statsAuth.name);
});

Deno.test("parseTokenLines() refuses what a client could not send or guess-proof", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["an empty file", "# nothing\n\n", /no token in it/],
    ["a space inside", "abc def 0123456789abcdef", /Invalid MCP token 1 in "f"/],
    ["a short token", "ok-but-short", /at least 16/],
    ["a quote", 'x"0123456789abcdefgh', /Invalid MCP token 1/],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => assert.throws(() => parseTokenLines(text, "f"), message));
  }
  assert.throws(
    () =>
      planFrontDoorSecrets({
        ...BASE,
        keptToken: { file: "k", text: "one-token-0123456789\ntwo-token-0123456789\n" },
      }),
    /Invalid MCP token in "k": expected one token/,
  );
});

Deno.test("mcpTokenPath() and statsAuthPath() keep the default stack's files at the top", () => {
  assert.equal(mcpTokenPath("agent-platform"), MCP_TOKEN_PATH);
  assert.equal(statsAuthPath("agent-platform"), STATS_AUTH_PATH);
  assert.equal(MCP_TOKEN_PATH, ".platform/secrets/mcp-token");
  assert.equal(mcpTokenPath("e2e"), ".platform/secrets/e2e/mcp-token");
});
