import assert from "node:assert/strict";
import { planDays } from "./plan.ts";

Deno.test("planDays() lays out consecutive days across months", () => {
  const days = planDays([{ city: "Rome", days: 2 }, { city: " Florence ", days: 1 }], "2026-01-30");
  assert.deepEqual(days, [
    { day: 1, date: "2026-01-30", city: "Rome" },
    { day: 2, date: "2026-01-31", city: "Rome" },
    { day: 3, date: "2026-02-01", city: "Florence" },
  ]);
});

Deno.test("planDays() crosses a leap day and a year end", () => {
  assert.deepEqual(
    planDays([{ city: "Oslo", days: 2 }], "2028-02-28").map((day) => day.date),
    ["2028-02-28", "2028-02-29"],
  );
  assert.deepEqual(
    planDays([{ city: "Oslo", days: 2 }], "2026-12-31").map((day) => day.date),
    ["2026-12-31", "2027-01-01"],
  );
});

Deno.test("planDays() rejects a date that is not on the calendar", () => {
  assert.throws(() => planDays([{ city: "Oslo", days: 1 }], "2026-02-30"), RangeError);
});
