import assert from "node:assert/strict";
import { gossipKey, isGossipKey } from "./gossip_key.ts";

Deno.test("gossipKey() makes a base64 key of 32 bytes", () => {
  const key = gossipKey((length) => new Uint8Array(length).fill(7));
  assert.equal(key, btoa(String.fromCharCode(...new Uint8Array(32).fill(7))));
  assert.equal(atob(gossipKey()).length, 32);
  assert.notEqual(gossipKey(), gossipKey());
  assert.ok(isGossipKey(gossipKey()));
});

Deno.test("gossipKey() refuses a short random source, isGossipKey() odd keys", () => {
  assert.throws(() => gossipKey(() => new Uint8Array(8)), RangeError);
  assert.equal(isGossipKey("not base64!"), false);
  assert.equal(isGossipKey(btoa("short")), false);
});
