import assert from "node:assert/strict";
import {
  createPicker,
  parseStrategy,
  type PickCandidate,
  seededRandom,
  STRATEGY_NAMES,
} from "./strategies.ts";

const THREE: PickCandidate[] = [
  { id: "b", weight: 1 },
  { id: "a", weight: 1 },
  { id: "c", weight: 1 },
];
const IDLE = new Map<string, number>();

function countPicks(
  picks: number,
  pick: (index: number) => PickCandidate | undefined,
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let index = 0; index < picks; index++) {
    const id = pick(index)?.id ?? "none";
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return counts;
}

Deno.test("parseStrategy() accepts every strategy name", async (t) => {
  for (const name of STRATEGY_NAMES) {
    await t.step(name, () => assert.equal(parseStrategy(` ${name.toUpperCase()} `), name));
  }
});

Deno.test("parseStrategy() names the valid values when the name is unknown", () => {
  assert.throws(
    () => parseStrategy("fastest"),
    {
      name: "RangeError",
      message:
        'Invalid strategy "fastest": expected one of "round-robin", "least-outstanding", "random", "weighted"',
    },
  );
});

Deno.test("createPicker() returns undefined when there is no candidate", async (t) => {
  for (const name of STRATEGY_NAMES) {
    await t.step(name, () => assert.equal(createPicker(name).pick([], IDLE), undefined));
  }
});

Deno.test("createPicker() uses every endpoint with every strategy", async (t) => {
  for (const name of STRATEGY_NAMES) {
    await t.step(name, () => {
      const picker = createPicker(name, { random: seededRandom(7) });
      const counts = countPicks(300, () => picker.pick(THREE, IDLE));
      assert.deepEqual(Object.keys(counts).sort(), ["a", "b", "c"]);
    });
  }
});

Deno.test("createPicker() round-robin visits every endpoint in ID order", () => {
  const picker = createPicker("round-robin");
  const ids = Array.from({ length: 6 }, () => picker.pick(THREE, IDLE)?.id);
  assert.deepEqual(ids, ["a", "b", "c", "a", "b", "c"]);
});

Deno.test("createPicker() round-robin stays fair when the endpoint list changes", async (t) => {
  await t.step("an endpoint that joins gets its turn without others losing theirs", () => {
    const picker = createPicker("round-robin");
    assert.equal(picker.pick(THREE, IDLE)?.id, "a");
    const four = [...THREE, { id: "ab", weight: 1 }];
    const ids = Array.from({ length: 4 }, () => picker.pick(four, IDLE)?.id);
    assert.deepEqual(ids, ["ab", "b", "c", "a"]);
  });
  await t.step("an endpoint that leaves does not make the next one skip a turn", () => {
    const picker = createPicker("round-robin");
    assert.equal(picker.pick(THREE, IDLE)?.id, "a");
    const withoutB = THREE.filter((candidate) => candidate.id !== "b");
    assert.equal(picker.pick(withoutB, IDLE)?.id, "c");
    assert.equal(picker.pick(THREE, IDLE)?.id, "a");
  });
  await t.step("shuffled lists give the same order", () => {
    const picker = createPicker("round-robin");
    const random = seededRandom(3);
    const counts = countPicks(300, () => {
      const shuffled = [...THREE].sort(() => random() - 0.5);
      return picker.pick(shuffled, IDLE);
    });
    assert.deepEqual(counts, { a: 100, b: 100, c: 100 });
  });
});

Deno.test("createPicker() least-outstanding picks the endpoint with the fewest calls", async (t) => {
  const cases: [string, Record<string, number>, string][] = [
    ["one busy endpoint", { a: 5, b: 0, c: 3 }, "b"],
    ["unknown counts as idle", { a: 1, b: 1 }, "c"],
    ["all equally busy rotates", { a: 2, b: 2, c: 2 }, "a"],
  ];
  for (const [label, counts, expected] of cases) {
    await t.step(label, () => {
      const picker = createPicker("least-outstanding");
      assert.equal(picker.pick(THREE, new Map(Object.entries(counts)))?.id, expected);
    });
  }
  await t.step("ties rotate so idle endpoints share the calls", () => {
    const picker = createPicker("least-outstanding");
    assert.deepEqual(countPicks(300, () => picker.pick(THREE, IDLE)), { a: 100, b: 100, c: 100 });
  });
  await t.step("a slow endpoint gets no calls while the others are free", () => {
    const picker = createPicker("least-outstanding");
    const outstanding = new Map([["c", 4]]);
    const counts = countPicks(30, () => picker.pick(THREE, outstanding));
    assert.deepEqual(counts, { a: 15, b: 15 });
  });
});

Deno.test("createPicker() random is uniform and reproducible with a seeded random", () => {
  const first = createPicker("random", { random: seededRandom(42) });
  const second = createPicker("random", { random: seededRandom(42) });
  const a = countPicks(3000, () => first.pick(THREE, IDLE));
  const b = countPicks(3000, () => second.pick(THREE, IDLE));
  assert.deepEqual(a, b);
  for (const count of Object.values(a)) assert.ok(count > 900 && count < 1100, `${count}`);
});

Deno.test("createPicker() weighted follows Consul weights", async (t) => {
  await t.step("picks in proportion to the weights", () => {
    const picker = createPicker("weighted", { random: seededRandom(1) });
    const weighted = [{ id: "a", weight: 1 }, { id: "b", weight: 3 }, { id: "c", weight: 6 }];
    const counts = countPicks(10_000, () => picker.pick(weighted, IDLE));
    assert.ok(Math.abs(counts.a - 1_000) < 150, `a ${counts.a}`);
    assert.ok(Math.abs(counts.b - 3_000) < 250, `b ${counts.b}`);
    assert.ok(Math.abs(counts.c - 6_000) < 250, `c ${counts.c}`);
  });
  await t.step("never picks a zero weight while another has weight", () => {
    const picker = createPicker("weighted", { random: seededRandom(2) });
    const weighted = [{ id: "a", weight: 0 }, { id: "b", weight: 1 }];
    assert.deepEqual(countPicks(100, () => picker.pick(weighted, IDLE)), { b: 100 });
  });
  await t.step("falls back to uniform when no weight is positive", () => {
    const picker = createPicker("weighted", { random: seededRandom(2) });
    const weighted = [{ id: "a", weight: 0 }, { id: "b", weight: 0 }];
    assert.deepEqual(
      Object.keys(countPicks(100, () => picker.pick(weighted, IDLE))).sort(),
      ["a", "b"],
    );
  });
  await t.step("reproducible with the same seed", () => {
    const ids = (seed: number) => {
      const picker = createPicker("weighted", { random: seededRandom(seed) });
      return Array.from({ length: 20 }, () => picker.pick(THREE, IDLE)?.id);
    };
    assert.deepEqual(ids(9), ids(9));
  });
});

Deno.test("seededRandom() returns numbers in [0, 1)", () => {
  const random = seededRandom(123);
  for (let index = 0; index < 1000; index++) {
    const value = random();
    assert.ok(value >= 0 && value < 1);
  }
});
