import assert from "node:assert/strict";
import {
  parseSessionKey,
  randomSessionKey,
  type SessionClaims,
  SessionCodec,
} from "./session_token.ts";

const CLAIMS: SessionClaims = {
  sid: "s-1",
  protocolVersion: "2025-11-25",
  client: { name: "test-client", version: "1.0.0" },
  issuedAt: 1_700_000_000,
};
const NOW = () => 1_700_000_100_000;

Deno.test("SessionCodec opens what it sealed, and each token is unique", async () => {
  const codec = await SessionCodec.create(randomSessionKey(), { now: NOW });
  const first = await codec.seal(CLAIMS);
  const second = await codec.seal(CLAIMS);
  assert.notEqual(first, second);
  assert.match(first, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(await codec.open(first), CLAIMS);
  assert.deepEqual(await codec.open(second), CLAIMS);
});

Deno.test("SessionCodec refuses tampered, truncated, foreign and garbage tokens", async (t) => {
  const codec = await SessionCodec.create(randomSessionKey(), { now: NOW });
  const foreign = await SessionCodec.create(randomSessionKey(), { now: NOW });
  const token = await codec.seal(CLAIMS);
  const flipped = token.slice(0, 30) + (token[30] === "A" ? "B" : "A") + token.slice(31);
  const cases: [string, string][] = [
    ["one character flipped", flipped],
    ["truncated", token.slice(0, -4)],
    ["sealed with another key", await foreign.seal(CLAIMS)],
    ["empty", ""],
    ["not base64url", "not a token!"],
    ["short", "AQID"],
    ["huge", "A".repeat(10_000)],
  ];
  for (const [name, candidate] of cases) {
    await t.step(name, async () => {
      assert.equal(await codec.open(candidate), undefined);
    });
  }
});

Deno.test("SessionCodec accepts tokens of a previous key during rotation and seals with the new", async () => {
  const oldKey = randomSessionKey();
  const before = await SessionCodec.create(oldKey, { now: NOW });
  const oldToken = await before.seal(CLAIMS);
  const rotated = await SessionCodec.create(randomSessionKey(), {
    previousKeys: [oldKey],
    now: NOW,
  });
  assert.deepEqual(await rotated.open(oldToken), CLAIMS);
  const newToken = await rotated.seal(CLAIMS);
  assert.equal(await before.open(newToken), undefined);
});

Deno.test("SessionCodec refuses an expired token", async () => {
  const key = randomSessionKey();
  const codec = await SessionCodec.create(key, { now: NOW, maxAgeSeconds: 60 });
  assert.equal(await codec.open(await codec.seal(CLAIMS)), undefined);
  const lenient = await SessionCodec.create(key, { now: NOW, maxAgeSeconds: 3600 });
  assert.deepEqual(await lenient.open(await codec.seal(CLAIMS)), CLAIMS);
});

Deno.test("SessionCodec caches opened tokens but still refuses them once expired", async () => {
  let now = NOW();
  const codec = await SessionCodec.create(randomSessionKey(), {
    now: () => now,
    maxAgeSeconds: 3600,
    cacheSize: 2,
  });
  const tokens = await Promise.all([1, 2, 3].map((i) => codec.seal({ ...CLAIMS, sid: `s-${i}` })));
  for (const token of tokens) assert.equal((await codec.open(token))?.sid.startsWith("s-"), true);
  // The oldest entry was dropped from the cache of two; it still opens by decryption.
  assert.equal((await codec.open(tokens[0]))?.sid, "s-1");
  now += 3_600_000;
  for (const token of tokens) assert.equal(await codec.open(token), undefined);
});

Deno.test("parseSessionKey() wants base64 of 32 bytes", () => {
  const key = randomSessionKey();
  const text = btoa(String.fromCharCode(...key));
  assert.deepEqual(parseSessionKey(text + "\n", "ROUTER_SESSION_KEY"), key);
  assert.throws(
    () => parseSessionKey(btoa("short"), "ROUTER_SESSION_KEY"),
    /Invalid ROUTER_SESSION_KEY: expected 32 bytes, got 5/,
  );
  assert.throws(() => parseSessionKey("%%%", "ROUTER_SESSION_KEY"), /not base64/);
});
