import assert from "node:assert/strict";
import { ConfigError } from "../runtime/config.ts";
import { digestToken, parseRouterConfig, strategyKey } from "./config.ts";
import { randomSessionKey } from "./session_token.ts";

function files(entries: Record<string, string>) {
  return {
    readTextFile(path: string): string {
      if (path in entries) return entries[path];
      throw new Error("No such file or directory");
    },
  };
}

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

Deno.test("parseRouterConfig() has safe defaults", async () => {
  const config = await parseRouterConfig({ ROUTER_AUTH: "none" }, files({}));
  assert.deepEqual(config.allowedOriginHostnames, ["localhost", "127.0.0.1", "[::1]"]);
  assert.equal(config.maxBodyBytes, 4 * 1024 * 1024);
  assert.equal(config.authRequired, false);
  assert.equal(config.oauth, undefined);
  assert.equal(config.sessionKey, undefined);
  assert.equal(config.callDeadlineMs, 60_000);
  assert.equal(config.strategies.size, 0);
  assert.ok(Object.isFrozen(config));
});

Deno.test("parseRouterConfig() reads keys, token files, origins and strategies", async () => {
  const key = randomSessionKey();
  const old = randomSessionKey();
  const config = await parseRouterConfig({
    ROUTER_ALLOWED_ORIGINS: "https://app.example.test, tools.example.test:8443",
    ROUTER_MAX_BODY_BYTES: "1024",
    ROUTER_CALL_DEADLINE: "500ms",
    ROUTER_SESSION_KEY_FILE: "/run/secrets/key",
    ROUTER_SESSION_KEY_OLD: base64(old),
    ROUTER_AUTH_TOKENS_FILE: "/run/secrets/tokens",
    LB_STRATEGY_AGENT_ECHO: "least-outstanding",
  }, files({ "/run/secrets/key": base64(key) + "\n", "/run/secrets/tokens": "# ops\nt0k\n" }));
  assert.deepEqual(config.allowedOriginHostnames, ["app.example.test", "tools.example.test"]);
  assert.equal(config.maxBodyBytes, 1024);
  assert.equal(config.callDeadlineMs, 500);
  assert.deepEqual(config.sessionKey, key);
  assert.deepEqual(config.previousSessionKeys, [old]);
  assert.equal(config.authRequired, true);
  assert.ok(config.authTokenDigests.has(digestToken("t0k")));
  assert.equal(config.strategies.get(strategyKey("agent-echo")), "least-outstanding");
});

Deno.test("parseRouterConfig() lists every problem at once", async () => {
  const error = await parseRouterConfig({
    ROUTER_MAX_BODY_BYTES: "-1",
    ROUTER_CALL_DEADLINE: "soon",
    ROUTER_SESSION_KEY: "c2hvcnQ=",
    ROUTER_AUTH_TOKENS_FILE: "/missing",
    LB_STRATEGY_AGENT_ECHO: "fastest",
  }, files({})).catch((error) => error);
  assert.ok(error instanceof ConfigError);
  const problems = error.problems;
  assert.equal(problems.length, 5, problems.join("\n"));
  assert.match(problems.join("\n"), /ROUTER_MAX_BODY_BYTES "-1"/);
  assert.match(problems.join("\n"), /ROUTER_CALL_DEADLINE "soon"/);
  assert.match(problems.join("\n"), /Invalid ROUTER_SESSION_KEY: expected 32 bytes, got 5/);
  assert.match(problems.join("\n"), /Cannot read ROUTER_AUTH_TOKENS_FILE "\/missing"/);
  assert.match(problems.join("\n"), /Invalid LB_STRATEGY_AGENT_ECHO: Invalid strategy "fastest"/);
  assert.equal(error.exitCode, 2);
});

Deno.test("parseRouterConfig() wants credentials unless ROUTER_AUTH=none", async (t) => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ["nothing set", {}, /No credentials to check: set ROUTER_AUTH_TOKENS_FILE/],
    ["an unknown mode", { ROUTER_AUTH: "off" }, /Invalid ROUTER_AUTH "off"/],
    [
      "none with a token file",
      { ROUTER_AUTH: "none", ROUTER_AUTH_TOKENS_FILE: "/t" },
      /ROUTER_AUTH=none contradicts/,
    ],
    [
      "a token with a space",
      { ROUTER_AUTH_TOKENS_FILE: "/bad" },
      /a token has characters other than/,
    ],
  ];
  for (const [name, env, problem] of cases) {
    await t.step(name, async () => {
      const error = await parseRouterConfig(env, files({ "/t": "ok\n", "/bad": "a b\n" }))
        .catch((error) => error);
      assert.ok(error instanceof ConfigError);
      assert.match(error.problems.join("\n"), problem);
      assert.equal(error.exitCode, 2);
    });
  }
});

Deno.test("parseRouterConfig() reads the OAuth resource server settings", async () => {
  const config = await parseRouterConfig({
    ROUTER_OAUTH_ISSUER: "https://auth.example.test/realms/x",
    ROUTER_OAUTH_JWKS_URL: "https://auth.example.test/realms/x/certs",
    ROUTER_RESOURCE_URL: "HTTPS://MCP.example.test/mcp/",
    ROUTER_OAUTH_SCOPES: "mcp:tools, mcp:read",
  }, files({}));
  assert.equal(config.authRequired, true);
  assert.equal(config.authTokenDigests.size, 0);
  assert.deepEqual({ ...config.oauth }, {
    issuer: "https://auth.example.test/realms/x",
    jwksUrl: "https://auth.example.test/realms/x/certs",
    resource: "https://mcp.example.test/mcp",
    audiences: ["https://mcp.example.test/mcp"],
    resourceMetadataUrl: "https://mcp.example.test/.well-known/oauth-protected-resource/mcp",
    resourceMetadataPath: "/.well-known/oauth-protected-resource/mcp",
    scopesSupported: ["mcp:tools", "mcp:read"],
  });
});

Deno.test("parseRouterConfig() lists every OAuth problem", async (t) => {
  const cases: [string, Record<string, string>, RegExp[]][] = [
    ["an audience without issuer", { ROUTER_OAUTH_AUDIENCE: "x" }, [
      /ROUTER_OAUTH_AUDIENCE set without ROUTER_OAUTH_ISSUER/,
    ]],
    ["an issuer alone", { ROUTER_OAUTH_ISSUER: "https://a.test" }, [
      /ROUTER_OAUTH_JWKS_URL is required/,
      /ROUTER_RESOURCE_URL is required/,
    ]],
    ["plain http off loopback", {
      ROUTER_OAUTH_ISSUER: "http://auth.example.test",
      ROUTER_OAUTH_JWKS_URL: "http://auth.example.test/jwks",
      ROUTER_RESOURCE_URL: "mcp.example.test",
    }, [
      /Invalid ROUTER_OAUTH_ISSUER "http:\/\/auth.example.test": must be an https URL/,
      /Invalid ROUTER_OAUTH_JWKS_URL/,
      /Invalid ROUTER_RESOURCE_URL "mcp.example.test"/,
    ]],
    ["a fragment in the resource", {
      ROUTER_OAUTH_ISSUER: "http://127.0.0.1:1",
      ROUTER_OAUTH_JWKS_URL: "http://127.0.0.1:1/jwks",
      ROUTER_RESOURCE_URL: "https://mcp.example.test/mcp#x",
    }, [/without fragment/]],
  ];
  for (const [name, env, expected] of cases) {
    await t.step(name, async () => {
      const error = await parseRouterConfig(env, files({})).catch((error) => error);
      assert.ok(error instanceof ConfigError);
      for (const problem of expected) assert.match(error.problems.join("\n"), problem);
    });
  }
});

Deno.test("parseRouterConfig() reads the ended-session limits", async () => {
  const limits = (env: Record<string, string>) =>
    parseRouterConfig({ ROUTER_AUTH: "none", ...env }, { readTextFile: () => "" });
  const defaults = await limits({});
  assert.equal(defaults.endedSessionsMax, 20_000);
  assert.deepEqual(defaults.sessionDeletes, { ratePerSecond: 1, burst: 20 });
  const cases: [string, string, string][] = [["500", "0.5", "5"], ["1.5", "0", "many"]];
  const [set, error] = await Promise.all(cases.map(([max, rate, burst]) =>
    limits({
      ROUTER_ENDED_SESSIONS_MAX: max,
      ROUTER_SESSION_DELETE_RATE: rate,
      ROUTER_SESSION_DELETE_BURST: burst,
    }).catch((error) => error)
  ));
  assert.equal(set.endedSessionsMax, 500);
  assert.deepEqual(set.sessionDeletes, { ratePerSecond: 0.5, burst: 5 });
  assert.ok(error instanceof ConfigError);
  assert.deepEqual(error.problems, [
    'Invalid ROUTER_ENDED_SESSIONS_MAX "1.5": expected a positive integer',
    'Invalid ROUTER_SESSION_DELETE_RATE "0": expected a positive number',
    'Invalid ROUTER_SESSION_DELETE_BURST "many": expected a positive integer',
  ]);
});

Deno.test("parseRouterConfig() wants connections to stay open longer than a call may take", async () => {
  await assert.rejects(
    () =>
      parseRouterConfig({
        ROUTER_AUTH: "none",
        ROUTER_CALL_DEADLINE: "60s",
        ROUTER_CONNECTION_IDLE: "30s",
      }, files({})),
    (error) =>
      error instanceof ConfigError &&
      /ROUTER_CONNECTION_IDLE must be longer than ROUTER_CALL_DEADLINE/.test(error.message),
  );
});
