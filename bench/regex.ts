/**
 * `deno task bench regex`: the cost of a schema `pattern` that backtracks catastrophically,
 * `^(a+)+$` against `a` × n followed by `b`, on V8's RegExp and on RE2 (`npm:re2js`, the engine the
 * schema validator uses), side by side in one run. V8 runs only while one match stays under 2 s
 * (each extra `a` doubles its time); RE2 runs every size, up to 100,000 characters.
 * Results in `bench/results/regex-<date>.json`.
 */
import { RE2JS } from "re2js";
import { compileValidator } from "../services/runtime/schema_validator.ts";

const PATTERN = "^(a+)+$";
const V8_LIMIT_MS = 2_000;

function time(run: () => unknown): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

interface Row {
  n: number;
  v8Ms: number | null;
  re2Ms: number;
  validatorMs: number;
}

const v8 = new RegExp(PATTERN);
const re2 = RE2JS.compile(PATTERN);
const validate = compileValidator({
  type: "object",
  properties: { text: { type: "string", pattern: PATTERN } },
});
const rows: Row[] = [];
let v8Stopped = false;
for (const n of [16, 18, 20, 22, 24, 25, 26, 27, 28, 31, 1_000, 100_000]) {
  const input = "a".repeat(n) + "b";
  let v8Ms: number | null = null;
  if (!v8Stopped && n <= 31) {
    v8Ms = time(() => v8.test(input));
    if (v8Ms > V8_LIMIT_MS / 2) v8Stopped = true;
  }
  const re2Ms = time(() => re2.test(input));
  const validatorMs = time(() => {
    try {
      validate({ text: input });
    } catch {
      // INVALID_ARGUMENT is the expected answer.
    }
  });
  rows.push({ n, v8Ms, re2Ms, validatorMs });
}

const fmt = (ms: number | null) => ms === null ? "not run" : `${ms.toFixed(3)} ms`;
console.log(`pattern ${PATTERN}, input "a" x n + "b"`);
console.log("n         V8 RegExp        RE2 (re2js)      compileValidator (RE2)");
for (const row of rows) {
  console.log(
    `${String(row.n).padEnd(9)} ${fmt(row.v8Ms).padEnd(16)} ${fmt(row.re2Ms).padEnd(16)} ${
      fmt(row.validatorMs)
    }`,
  );
}
const lastV8 = rows.filter((row) => row.v8Ms !== null).at(-1)!;
const extrapolated31 = lastV8.v8Ms! * 2 ** (31 - lastV8.n);
console.log(
  `V8 at n=31, extrapolated from n=${lastV8.n} (x2 per character): ${
    (extrapolated31 / 1000).toFixed(1)
  } s`,
);
const stamp = new Date().toISOString().slice(0, 19).replaceAll(":", "-");
const file = new URL(`./results/regex-${stamp}.json`, import.meta.url);
await Deno.writeTextFile(
  file,
  JSON.stringify({ pattern: PATTERN, rows, v8ExtrapolatedMsAt31: extrapolated31 }, null, 2) + "\n",
);
console.log(`wrote ${file.pathname}`);
