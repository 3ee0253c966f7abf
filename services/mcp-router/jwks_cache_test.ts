import assert from "node:assert/strict";
import { exportJWK, generateKeyPair } from "jose";
import { JwksCache } from "./jwks_cache.ts";

async function publicJwk(kid: string) {
  const { publicKey } = await generateKeyPair("ES256", { extractable: true });
  return { ...(await exportJWK(publicKey)), kid, alg: "ES256" };
}

/** A loopback server whose answer the test changes; counts requests. */
function server(answer: () => Response | Promise<Response>) {
  let requests = 0;
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    requests++;
    return answer();
  });
  return {
    url: `http://127.0.0.1:${http.addr.port}/jwks`,
    get requests() {
      return requests;
    },
    close: () => http.shutdown(),
  };
}

const HEADER = { alg: "ES256", kid: "a" };

Deno.test("JwksCache refetches for an unknown key at most once per cooldown", async () => {
  let keys = [await publicJwk("a")];
  const jwks = server(() => Response.json({ keys }));
  let now = 1_000_000;
  const cache = new JwksCache(jwks.url, { now: () => now, cooldownMs: 30_000 });
  try {
    await cache.getKey(HEADER);
    await cache.getKey(HEADER);
    assert.equal(jwks.requests, 1);
    // A rotation: key "b" appears; the first token naming it triggers a fetch once the cooldown
    // has passed, tokens naming an unknown key within the cooldown do not.
    keys = [...keys, await publicJwk("b")];
    await assert.rejects(() => cache.getKey({ alg: "ES256", kid: "b" }), {
      code: "ERR_JWKS_NO_MATCHING_KEY",
    });
    assert.equal(jwks.requests, 1);
    now += 30_001;
    await cache.getKey({ alg: "ES256", kid: "b" });
    assert.equal(jwks.requests, 2);
    for (let i = 0; i < 5; i++) {
      await assert.rejects(() => cache.getKey({ alg: "ES256", kid: "unknown" }));
    }
    assert.equal(jwks.requests, 2);
  } finally {
    await jwks.close();
  }
});

Deno.test("JwksCache serves stale keys while it fetches the set again", async () => {
  let keys = [await publicJwk("a")];
  let hold = false;
  const arrived = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  const jwks = server(async () => {
    if (hold) {
      arrived.resolve();
      await gate.promise;
    }
    return Response.json({ keys });
  });
  let now = 1_000_000;
  const cache = new JwksCache(jwks.url, { now: () => now, maxAgeMs: 60_000, cooldownMs: 1_000 });
  try {
    await cache.getKey(HEADER);
    keys = [await publicJwk("a")];
    hold = true;
    now += 60_001;
    // Answered from the held set although the issuer has not answered the refresh yet.
    await cache.getKey(HEADER);
    await arrived.promise;
    assert.equal(cache.fetches, 2);
  } finally {
    gate.resolve();
    await jwks.close();
  }
});

Deno.test("JwksCache refuses hostile key sets", async (t) => {
  const cases: [string, () => Response | Promise<Response>, RegExp][] = [
    [
      "a declared body over the limit",
      () => new Response(" ".repeat(2048), { headers: { "content-length": "2048" } }),
      /over the limit of 1024/,
    ],
    [
      "a streamed body over the limit",
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              for (let i = 0; i < 8; i++) controller.enqueue(new Uint8Array(512));
              controller.close();
            },
          }),
        ),
      /over the limit of 1024/,
    ],
    ["a redirect", () => Response.redirect("http://127.0.0.1:9/jwks", 302), /redirect/i],
    ["not JSON", () => new Response("<html>"), /not JSON/],
    [
      "only a shared secret key",
      () => Response.json({ keys: [{ kty: "oct", k: "c2VjcmV0", kid: "a" }] }),
      /no public signature key/,
    ],
    [
      "an answer slower than the timeout",
      () => new Promise((resolve) => setTimeout(() => resolve(Response.json({ keys: [] })), 400)),
      /timed out|abort/i,
    ],
  ];
  for (const [name, answer, reason] of cases) {
    await t.step(name, async () => {
      const jwks = server(answer);
      const cache = new JwksCache(jwks.url, { maxBytes: 1024, timeoutMs: 100 });
      try {
        const error = await cache.getKey(HEADER).catch((error) => error);
        assert.equal(error.code, "JWKS_UNAVAILABLE");
        assert.match(String(error.cause?.message ?? error.cause), reason);
      } finally {
        await jwks.close();
      }
    });
  }
});
