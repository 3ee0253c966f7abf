import assert from "node:assert/strict";
import { BearerAuth } from "./bearer_auth.ts";
import { digestToken, LOCALHOST_ORIGINS } from "./config.ts";
import { type GuardOptions, guardRequest } from "./http_guard.ts";

const OPEN: GuardOptions = {
  allowedOriginHostnames: LOCALHOST_ORIGINS,
  auth: undefined,
  maxBodyBytes: 100,
};

function post(headers: Record<string, string>, body = "{}"): Request {
  return new Request("http://127.0.0.1/mcp", { method: "POST", headers, body });
}

Deno.test("guardRequest() checks the Origin header", async (t) => {
  const cases: [string, Record<string, string>, number | undefined][] = [
    ["no Origin passes", {}, undefined],
    ["a localhost origin passes", { origin: "http://localhost:3000" }, undefined],
    ["another origin is 403", { origin: "https://evil.example" }, 403],
    ["the null origin is 403", { origin: "null" }, 403],
  ];
  for (const [name, headers, status] of cases) {
    await t.step(name, async () => {
      const result = await guardRequest(post(headers), OPEN);
      assert.equal(result?.response.status, status);
    });
  }
  await t.step("* allows every origin", async () => {
    const result = await guardRequest(post({ origin: "https://evil.example" }), {
      ...OPEN,
      allowedOriginHostnames: ["*"],
    });
    assert.equal(result, undefined);
  });
});

Deno.test("guardRequest() wants a listed bearer token when auth is on", async (t) => {
  const auth = new BearerAuth({ tokenDigests: new Set([digestToken("s3cret")]) });
  const options = { ...OPEN, auth };
  const cases: [string, Record<string, string>, number | undefined, string | undefined][] = [
    ["no token is 401", {}, 401, 'Bearer realm="mcp-router"'],
    [
      "a wrong token is 401 invalid_token",
      { authorization: "Bearer nope" },
      401,
      'Bearer realm="mcp-router", error="invalid_token", error_description="The bearer token is not valid"',
    ],
    [
      "a malformed token is 401 invalid_token",
      { authorization: "Bearer a b" },
      401,
      'Bearer realm="mcp-router", error="invalid_token", error_description="The bearer token is malformed"',
    ],
    [
      "another scheme is 401",
      { authorization: "Basic czNjcmV0" },
      401,
      'Bearer realm="mcp-router"',
    ],
    ["the token passes", { authorization: "Bearer s3cret" }, undefined, undefined],
  ];
  for (const [name, headers, status, challenge] of cases) {
    await t.step(name, async () => {
      const result = await guardRequest(post(headers), options);
      assert.equal(result?.response.status, status);
      if (status === 401) {
        assert.equal(result?.reason, "auth");
        assert.equal(result?.response.headers.get("www-authenticate"), challenge);
        await result?.response.body?.cancel();
      }
    });
  }
});

Deno.test("guardRequest() refuses a declared body over the limit with 413", async () => {
  const result = await guardRequest(post({ "content-length": "101" }, "x".repeat(101)), OPEN);
  assert.equal(result?.response.status, 413);
  assert.equal(result?.reason, "body_too_large");
  const body = await result?.response.json();
  assert.match(body.error.message, /over the limit of 100 bytes/);
});
