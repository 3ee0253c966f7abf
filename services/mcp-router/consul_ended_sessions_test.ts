import assert from "node:assert/strict";
import {
  ENDED_SESSIONS_KV_PREFIX,
  endedSessionKey,
  parseEndedSessionKeys,
} from "./consul_ended_sessions.ts";

Deno.test("endedSessionKey() and parseEndedSessionKeys() agree, ignoring foreign keys", () => {
  const keys = [
    endedSessionKey("abc_DEF-123", 1_800_000_000),
    endedSessionKey("x", 1_800_000_000.2),
    `${ENDED_SESSIONS_KV_PREFIX}not-a-number`,
    `${ENDED_SESSIONS_KV_PREFIX}`,
    "platform/other/1-y",
  ];
  assert.equal(keys[0], `${ENDED_SESSIONS_KV_PREFIX}1800000000-abc_DEF-123`);
  assert.deepEqual([...parseEndedSessionKeys(keys)], [
    ["abc_DEF-123", 1_800_000_000],
    ["x", 1_800_000_001],
  ]);
  assert.throws(() => parseEndedSessionKeys({}), TypeError);
});
