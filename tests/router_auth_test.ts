/**
 * The router as an authenticated resource server, as real processes: a real router with a static
 * token file and an OAuth issuer whose JSON Web Key Set a `Deno.serve` of the test publishes, the
 * official MCP client, and raw requests where the challenge itself is checked.
 */
import assert from "node:assert/strict";
import {
  type CryptoKey as JoseCryptoKey,
  exportJWK,
  generateKeyPair,
  type JWTPayload,
  SignJWT,
} from "jose";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { spawnDeno } from "./helpers/service_process.ts";
import { connectV1, initializeBody, startRouter } from "./router_harness.ts";

const RESOURCE = "https://mcp.example.test/mcp";
const METADATA_URL = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp";
const STATIC_TOKEN = "static-token-for-tests";
const KID = "test-key-1";

const INITIALIZE = initializeBody("auth-test");

/** A key pair of the issuer's; its public half is what the JWKS server publishes. */
async function issuerKey() {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  return {
    privateKey,
    jwk: { ...(await exportJWK(publicKey)), kid: KID, alg: "ES256", use: "sig" },
  };
}

/** Serves `/jwks` on loopback, counting requests. */
function serveJwks(keys: () => unknown[]) {
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    requests++;
    if (new URL(request.url).pathname !== "/jwks") return new Response(null, { status: 404 });
    return Response.json({ keys: keys() });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get requests() {
      return requests;
    },
    close: () => server.shutdown(),
  };
}

async function sign(
  privateKey: JoseCryptoKey,
  claims: JWTPayload,
  options: { issuer: string; audience?: string; expiresIn?: string | number },
): Promise<string> {
  const jwt = new SignJWT({ scope: "mcp", ...claims })
    .setProtectedHeader({ alg: "ES256", kid: KID, typ: "at+jwt" })
    .setIssuer(options.issuer)
    .setSubject("user-1")
    .setIssuedAt()
    .setAudience(options.audience ?? RESOURCE)
    .setExpirationTime(options.expiresIn ?? "5m");
  return await jwt.sign(privateKey);
}

async function post(url: URL, token?: string): Promise<Response> {
  return await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: INITIALIZE,
  });
}

Deno.test("mcp-router accepts only its static tokens and its issuer's JWTs for this resource", async (t) => {
  const consul = await startConsulDev();
  const key = await issuerKey();
  const jwks = serveJwks(() => [key.jwk]);
  const issuer = jwks.url;
  const tokens = await Deno.makeTempFile({ prefix: "router-tokens-" });
  await Deno.writeTextFile(tokens, `# for the test\n${STATIC_TOKEN}\n`);
  const router = await startRouter(consul.url, "router-auth", {
    ROUTER_AUTH_TOKENS_FILE: tokens,
    ROUTER_OAUTH_ISSUER: issuer,
    ROUTER_OAUTH_JWKS_URL: `${jwks.url}/jwks`,
    ROUTER_RESOURCE_URL: RESOURCE,
    ROUTER_OAUTH_SCOPES: "mcp",
  });
  const base = `http://127.0.0.1:${router.port}`;
  try {
    await t.step(
      "no credentials: 401 with a challenge naming the metadata, no error code",
      async () => {
        const response = await post(router.url);
        assert.equal(response.status, 401);
        assert.equal(
          response.headers.get("www-authenticate"),
          `Bearer realm="mcp-router", resource_metadata="${METADATA_URL}"`,
        );
        assert.equal((await response.json()).error.message, "Missing or invalid bearer token");
        await assert.rejects(() => connectV1(router.url), /401|Unauthorized|bearer/i);
      },
    );

    const other = await issuerKey();
    const refusals: [string, () => Promise<string>, string][] = [
      [
        "signed by another key with the same key ID",
        () => sign(other.privateKey, {}, { issuer }),
        "The access token signature does not verify",
      ],
      [
        "expired",
        () => sign(key.privateKey, {}, { issuer, expiresIn: Math.floor(Date.now() / 1000) - 3600 }),
        "The access token expired",
      ],
      [
        "for another audience",
        () => sign(key.privateKey, {}, { issuer, audience: "https://other.example.test/mcp" }),
        "The access token is not meant for this resource",
      ],
      [
        "from another issuer",
        () => sign(key.privateKey, {}, { issuer: "https://evil.example.test" }),
        "The access token is from another issuer",
      ],
      [
        "unsigned (alg none)",
        () => {
          const part = (value: unknown) =>
            btoa(JSON.stringify(value)).replace(/=+$/, "").replaceAll("+", "-").replaceAll(
              "/",
              "_",
            );
          const now = Math.floor(Date.now() / 1000);
          return Promise.resolve(
            `${part({ alg: "none" })}.${
              part({ iss: issuer, aud: RESOURCE, exp: now + 300, sub: "x" })
            }.`,
          );
        },
        // No signature: not even the shape of a signed token.
        "The bearer token is not valid",
      ],
    ];
    for (const [name, make, description] of refusals) {
      await t.step(`a JWT ${name}: 401 invalid_token with the challenge`, async () => {
        const response = await post(router.url, await make());
        assert.equal(response.status, 401);
        await response.body?.cancel();
        assert.equal(
          response.headers.get("www-authenticate"),
          `Bearer realm="mcp-router", resource_metadata="${METADATA_URL}", ` +
            `error="invalid_token", error_description="${description}"`,
        );
      });
    }

    await t.step("a valid JWT: the official client is served", async () => {
      const token = await sign(key.privateKey, {}, { issuer });
      const { client } = await connectV1(router.url, {
        headers: { authorization: `Bearer ${token}` },
      });
      try {
        assert.deepEqual((await client.listTools()).tools, []);
      } finally {
        await client.close();
      }
      // The key set was fetched once for every token above.
      assert.equal(jwks.requests, 1);
    });

    await t.step("the static token: the official client is served", async () => {
      const { client } = await connectV1(router.url, {
        headers: { authorization: `Bearer ${STATIC_TOKEN}` },
      });
      try {
        assert.deepEqual((await client.listTools()).tools, []);
      } finally {
        await client.close();
      }
    });

    await t.step("the Protected Resource Metadata document, at both well-known paths", async () => {
      for (
        const path of [
          "/.well-known/oauth-protected-resource/mcp",
          "/.well-known/oauth-protected-resource",
        ]
      ) {
        const response = await fetch(`${base}${path}`);
        assert.equal(response.status, 200);
        assert.match(response.headers.get("content-type") ?? "", /application\/json/);
        assert.deepEqual(await response.json(), {
          resource: RESOURCE,
          authorization_servers: [issuer],
          bearer_methods_supported: ["header"],
          scopes_supported: ["mcp"],
          resource_name: "agent-platform MCP router",
        });
      }
    });
  } finally {
    await router.stop();
    await jwks.close();
    await consul.stop();
    await Deno.remove(tokens);
  }
});

Deno.test("mcp-router answers 503, not 401, while its issuer's key set is out of reach", async () => {
  const consul = await startConsulDev();
  const key = await issuerKey();
  // An endless body: the router must give up at its size limit instead of reading on.
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const chunk = new TextEncoder().encode(" ".repeat(16 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Bounded on our side too: 64 MiB at most.
        if (sent++ > 4096) controller.close();
        else controller.enqueue(chunk);
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
  const issuer = `http://127.0.0.1:${server.addr.port}`;
  const router = await startRouter(consul.url, "router-auth-hostile-jwks", {
    ROUTER_OAUTH_ISSUER: issuer,
    ROUTER_OAUTH_JWKS_URL: `${issuer}/jwks`,
    ROUTER_RESOURCE_URL: RESOURCE,
  });
  try {
    const response = await post(router.url, await sign(key.privateKey, {}, { issuer }));
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "30");
    assert.match((await response.json()).error.message, /issuer's keys are unavailable/);
    // Still serving: a request without a token gets its challenge.
    const unauthenticated = await post(router.url);
    assert.equal(unauthenticated.status, 401);
    await unauthenticated.body?.cancel();
    // The operator learns why from the log (one line per fetch, not per request).
    assert.match(router.output(), /Cannot fetch the OAuth key set.*over the limit of 65536 bytes/);
  } finally {
    await router.stop();
    await server.shutdown();
    await consul.stop();
  }
});

Deno.test("mcp-router exits 2 with a clear message on bad auth settings", async (t) => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ["no credentials and no ROUTER_AUTH=none", {}, /No credentials to check/],
    [
      "an issuer without key set or resource",
      { ROUTER_OAUTH_ISSUER: "https://auth.example.test" },
      /ROUTER_OAUTH_JWKS_URL is required/,
    ],
    ["an issuer over plain HTTP", {
      ROUTER_OAUTH_ISSUER: "http://auth.example.test",
      ROUTER_OAUTH_JWKS_URL: "https://auth.example.test/jwks",
      ROUTER_RESOURCE_URL: RESOURCE,
    }, /Invalid ROUTER_OAUTH_ISSUER "http:\/\/auth.example.test": must be an https URL/],
    ["ROUTER_AUTH=none with a token file", {
      ROUTER_AUTH: "none",
      ROUTER_AUTH_TOKENS_FILE: "/dev/null",
    }, /ROUTER_AUTH=none contradicts/],
  ];
  for (const [name, env, message] of cases) {
    await t.step(name, async () => {
      const child = spawnDeno(["services/mcp-router/main.ts"], {
        // Nothing answers there: the settings are refused before anything is reached.
        env: { CONSUL_HTTP_ADDR: "http://127.0.0.1:9", PORT: "0", ...env },
      });
      const status = await child.exited;
      assert.equal(status.code, 2, child.output());
      assert.match(child.output(), /error: mcp-router: /);
      assert.match(child.output(), message);
    });
  }
});

Deno.test("the MCP probe sends the token of its --token-file, with both SDK eras", async () => {
  const consul = await startConsulDev();
  const dir = await Deno.makeTempDir({ prefix: "router-auth-probe-" });
  await Deno.writeTextFile(`${dir}/tokens`, `${STATIC_TOKEN}\n`);
  await Deno.writeTextFile(`${dir}/mcp-token`, `${STATIC_TOKEN}\n`);
  const router = await startRouter(consul.url, "router-auth-probe", {
    ROUTER_AUTH_TOKENS_FILE: `${dir}/tokens`,
  });
  const probe = (extra: string[]) =>
    spawnDeno([
      "ops/probe/mcp_main.ts",
      "--url",
      String(router.url),
      "--rate",
      "2",
      "--duration",
      "1",
      "--sessions",
      "1",
      "--stateless",
      "1",
      ...extra,
    ]);
  try {
    // No backend runs: the calls fail, but both sessions open only with the token.
    const withToken = probe(["--token-file", `${dir}/mcp-token`]);
    await withToken.exited;
    assert.match(withToken.output(), /probe: calling through .* 1 session\(s\) and 1 stateless/);
    const without = probe([]);
    const status = await without.exited;
    assert.equal(status.code, 1);
    assert.match(without.output(), /Cannot open MCP sessions/);
    assert.doesNotMatch(without.output(), /probe: calling through/);
  } finally {
    await router.stop();
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
