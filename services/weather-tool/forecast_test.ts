import assert from "node:assert/strict";
import { CONDITIONS, forecast, parseIsoDate } from "./forecast.ts";

Deno.test("forecast() is deterministic and ignores case and spacing", () => {
  const first = forecast("Lisbon", "2026-07-14");
  assert.deepEqual(forecast("Lisbon", "2026-07-14"), first);
  assert.deepEqual({ ...forecast("  lisbon ", "2026-07-14"), city: "Lisbon" }, first);
});

Deno.test("forecast() gives plausible, varied values", () => {
  const seen = new Set<string>();
  for (let day = 1; day <= 28; day++) {
    for (const city of ["Oslo", "Cairo", "Lima", "Tokyo"]) {
      const result = forecast(city, `2026-02-${String(day).padStart(2, "0")}`);
      assert.ok(result.min_c < result.max_c);
      assert.ok(result.min_c > -40 && result.max_c < 50);
      assert.ok(result.precipitation_chance >= 0 && result.precipitation_chance <= 100);
      assert.ok((CONDITIONS as readonly string[]).includes(result.conditions));
      seen.add(result.conditions);
    }
  }
  assert.ok(seen.size >= 4, `only ${[...seen].join(", ")}`);
});

Deno.test("parseIsoDate() accepts only calendar dates", async (t) => {
  const cases: [string, boolean][] = [
    ["2026-02-28", true],
    ["2024-02-29", true],
    ["2026-02-29", false],
    ["2026-13-01", false],
    ["26-01-01", false],
    ["2026-1-1", false],
    ["tomorrow", false],
  ];
  for (const [text, valid] of cases) {
    await t.step(text, () => assert.equal(parseIsoDate(text) !== undefined, valid));
  }
});
