import assert from "node:assert/strict";
import { Ejector } from "./ejection.ts";

Deno.test("Ejector ejects an endpoint after consecutive failures", () => {
  const ejector = new Ejector({ threshold: 2, baseMs: 1000, maxMs: 8000 });
  assert.equal(ejector.recordFailure("a", 0), undefined);
  assert.equal(ejector.isEjected("a", 0), false);
  assert.equal(ejector.recordFailure("a", 10), 1010);
  assert.equal(ejector.isEjected("a", 10), true);
  assert.equal(ejector.isEjected("b", 10), false);
});

Deno.test("Ejector resets the streak on success", () => {
  const ejector = new Ejector({ threshold: 2 });
  ejector.recordFailure("a", 0);
  ejector.recordSuccess("a");
  assert.equal(ejector.recordFailure("a", 1), undefined);
  assert.equal(ejector.isEjected("a", 1), false);
});

Deno.test("Ejector readmits after the backoff and doubles it on the next failure", async (t) => {
  const ejector = new Ejector({ threshold: 2, baseMs: 1000, maxMs: 3000 });
  ejector.recordFailure("a", 0);
  ejector.recordFailure("a", 0);
  await t.step("failures while ejected do not extend the ejection", () => {
    assert.equal(ejector.recordFailure("a", 500), undefined);
    assert.equal(ejector.isEjected("a", 999), true);
  });
  await t.step("readmitted when the backoff has passed", () => {
    assert.equal(ejector.isEjected("a", 1000), false);
  });
  await t.step("one failure on probation ejects again for twice as long", () => {
    assert.equal(ejector.recordFailure("a", 1000), 3000);
  });
  await t.step("the backoff is capped", () => {
    assert.equal(ejector.recordFailure("a", 3000), 6000);
    assert.equal(ejector.recordFailure("a", 6000), 9000);
  });
  await t.step("a success clears the escalation", () => {
    ejector.recordSuccess("a");
    ejector.recordFailure("a", 9000);
    assert.equal(ejector.recordFailure("a", 9000), 10_000);
  });
});

Deno.test("Ejector never leaves out the last endpoint", async (t) => {
  const candidates = [{ id: "a" }, { id: "b" }];
  const ejector = new Ejector({ threshold: 1, baseMs: 1000 });
  await t.step("admits the endpoints that are not ejected", () => {
    ejector.recordFailure("a", 0);
    assert.deepEqual(ejector.admit(candidates, 0), [{ id: "b" }]);
  });
  await t.step("admits every endpoint when all are ejected", () => {
    ejector.recordFailure("b", 0);
    assert.deepEqual(ejector.admit(candidates, 0), candidates);
  });
});

Deno.test("Ejector forgets endpoints that left", () => {
  const ejector = new Ejector({ threshold: 1 });
  ejector.recordFailure("a", 0);
  ejector.recordFailure("b", 0);
  ejector.retain(new Set(["b"]));
  assert.equal(ejector.isEjected("a", 0), false);
  assert.equal(ejector.isEjected("b", 0), true);
});
