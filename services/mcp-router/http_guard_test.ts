import assert from "node:assert/strict";
import { digestToken, LOCALHOST_ORIGINS } from "./config.ts";
import { type GuardOptions, guardRequest } from "./http_guard.ts";

const OPEN: GuardOptions = {
  allowedOriginHostnames: LOCALHOST_ORIGINS,
  authTokenDigests: new Set(),
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
  const options = { ...OPEN, authTokenDigests: new Set([await digestToken("s3cret")]) };
  const cases: [string, Record<string, string>, number | undefined][] = [
    ["no token is 401", {}, 401],
    ["a wrong token is 401", { authorization: "Bearer nope" }, 401],
    ["another scheme is 401", { authorization: "Basic czNjcmV0" }, 401],
    ["the token passes", { authorization: "Bearer s3cret" }, undefined],
  ];
  for (const [name, headers, status] of cases) {
    await t.step(name, async () => {
      const result = await guardRequest(post(headers), options);
      assert.equal(result?.response.status, status);
      if (status === 401) {
        assert.equal(result?.response.headers.get("www-authenticate"), 'Bearer realm="mcp-router"');
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
