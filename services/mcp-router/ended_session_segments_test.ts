import assert from "node:assert/strict";
import {
  bucketSecondsFor,
  ENDED_SESSIONS_KV_PREFIX,
  EndedSessionLedger,
  expiryBucket,
  parseSegment,
  parseSegmentKeys,
  SEGMENT_CAPACITY,
  segmentKey,
} from "./ended_session_segments.ts";

const SID = "AAAAAAAAAAAAAAAA";

function sid(n: number): string {
  return `s${String(n).padStart(15, "0")}`;
}

Deno.test("expiryBucket() rounds an expiry up to its bucket's end", async (t) => {
  const cases: [number, number, number][] = [
    [3600, 3600, 3600],
    [3601, 3600, 7200],
    [1.5, 1, 2],
    [0, 60, 0],
  ];
  for (const [expiresAt, width, bucket] of cases) {
    await t.step(`${expiresAt} in buckets of ${width} -> ${bucket}`, () => {
      assert.equal(expiryBucket(expiresAt, width), bucket);
    });
  }
  assert.equal(bucketSecondsFor(24 * 3600), 3600);
  assert.equal(bucketSecondsFor(10), 1);
});

Deno.test("parseSegmentKeys() keeps the largest count of each segment, ignoring foreign keys", () => {
  const keys = [
    segmentKey({ bucket: 7200, writer: "router-a.1f", segment: 0, count: 3 }),
    segmentKey({ bucket: 7200, writer: "router-a.1f", segment: 0, count: 9 }),
    segmentKey({ bucket: 7200, writer: "router-b.2e", segment: 1, count: 256 }),
    `${ENDED_SESSIONS_KV_PREFIX}7200/router-c/0-257`,
    `${ENDED_SESSIONS_KV_PREFIX}7200/router-c/0-0`,
    `${ENDED_SESSIONS_KV_PREFIX}1800000000-oldstyle`,
    `${ENDED_SESSIONS_KV_PREFIX}7200/../0-1`,
    "platform/other/7200/router-a/0-1",
    42,
  ];
  assert.equal(keys[0], `${ENDED_SESSIONS_KV_PREFIX}7200/router-a.1f/0-3`);
  assert.deepEqual([...parseSegmentKeys(keys)], [
    ["7200/router-a.1f/0", { bucket: 7200, writer: "router-a.1f", segment: 0, count: 9 }],
    ["7200/router-b.2e/1", { bucket: 7200, writer: "router-b.2e", segment: 1, count: 256 }],
    ["7200/../0", { bucket: 7200, writer: "..", segment: 0, count: 1 }],
  ]);
  assert.throws(() => parseSegmentKeys({}), TypeError);
});

Deno.test("parseSegment() keeps well-formed IDs only, and no more than a segment holds", () => {
  assert.deepEqual(parseSegment(`${SID}\nbad id!\n\n${SID.toLowerCase()}`), [
    SID,
    SID.toLowerCase(),
  ]);
  const long = Array.from({ length: SEGMENT_CAPACITY + 10 }, (_, i) => sid(i)).join("\n");
  assert.equal(parseSegment(long).length, SEGMENT_CAPACITY);
});

Deno.test("EndedSessionLedger batches a segment's growth into one set and one delete", () => {
  const ledger = new EndedSessionLedger("r1", { capacity: 1000, bucketSeconds: 100 });
  assert.equal(ledger.planFlush(64), undefined);
  ledger.add(sid(1), 150);
  ledger.add(sid(2), 199);
  const first = ledger.planFlush(64)!;
  assert.deepEqual(first.operations, [
    { verb: "set", key: `${ENDED_SESSIONS_KV_PREFIX}200/r1/0-2`, value: `${sid(1)}\n${sid(2)}` },
  ]);
  // Not applied yet: the same work is planned again.
  assert.equal(ledger.planFlush(64)!.operations.length, 1);
  first.commit();
  assert.equal(ledger.unwritten, 0);
  assert.equal(ledger.planFlush(64), undefined);
  ledger.add(sid(3), 120);
  ledger.add(sid(4), 250);
  assert.deepEqual(ledger.planFlush(64)!.operations, [
    {
      verb: "set",
      key: `${ENDED_SESSIONS_KV_PREFIX}200/r1/0-3`,
      value: `${sid(1)}\n${sid(2)}\n${sid(3)}`,
    },
    { verb: "delete", key: `${ENDED_SESSIONS_KV_PREFIX}200/r1/0-2` },
    { verb: "set", key: `${ENDED_SESSIONS_KV_PREFIX}300/r1/0-1`, value: sid(4) },
  ]);
  assert.equal(ledger.has(sid(3)), true);
  assert.equal(ledger.earliestBucket, 200);
});

Deno.test("EndedSessionLedger starts a new segment when one is full, and stays in the transaction limit", () => {
  const ledger = new EndedSessionLedger("r1", { capacity: 10_000, bucketSeconds: 100 });
  for (let i = 0; i < SEGMENT_CAPACITY * 3 + 1; i++) ledger.add(sid(i), 50);
  const plan = ledger.planFlush(3)!;
  assert.deepEqual(plan.operations.map((operation) => operation.key), [
    `${ENDED_SESSIONS_KV_PREFIX}100/r1/0-256`,
    `${ENDED_SESSIONS_KV_PREFIX}100/r1/1-256`,
    `${ENDED_SESSIONS_KV_PREFIX}100/r1/2-256`,
  ]);
  plan.commit();
  assert.equal(ledger.unwritten, 1);
  assert.deepEqual(ledger.planFlush(64)!.operations.map((operation) => operation.key), [
    `${ENDED_SESSIONS_KV_PREFIX}100/r1/3-1`,
  ]);
});

Deno.test("EndedSessionLedger refuses past its capacity until a bucket expires", () => {
  const ledger = new EndedSessionLedger("r1", { capacity: 2, bucketSeconds: 100 });
  assert.equal(ledger.add(sid(1), 50), undefined);
  assert.equal(ledger.add(sid(2), 150), undefined);
  assert.equal(ledger.add(sid(2), 150), undefined, "the same session twice costs nothing");
  assert.equal(ledger.add(sid(3), 150), "full");
  assert.equal(ledger.expire(100), 0, "a bucket is kept through its end");
  assert.equal(ledger.expire(100.5), 1);
  assert.equal(ledger.has(sid(1)), false);
  assert.equal(ledger.add(sid(3), 150), undefined);
  assert.equal(ledger.size, 2);
  assert.throws(() => ledger.add("not an id!", 10), RangeError);
  assert.throws(() => new EndedSessionLedger("a/b", { capacity: 1, bucketSeconds: 1 }), RangeError);
});
