import assert from "node:assert/strict";
import { compileValidator } from "./schema_validator.ts";
import { ToolError } from "./tool_error.ts";

const validate = compileValidator({
  type: "object",
  properties: {
    city: { type: "string", minLength: 1 },
    stops: {
      type: "array",
      items: {
        type: "object",
        properties: { days: { type: "integer", minimum: 1 } },
        required: ["days"],
      },
    },
  },
  required: ["city"],
  additionalProperties: false,
});

function messageOf(value: unknown): string {
  try {
    validate(value);
  } catch (error) {
    assert.ok(error instanceof ToolError);
    assert.equal(error.code, "INVALID_ARGUMENT");
    return error.message;
  }
  return "valid";
}

Deno.test("compileValidator() names the field at fault", async (t) => {
  const cases: [string, unknown, string][] = [
    ["valid", { city: "Oslo", stops: [{ days: 2 }] }, "valid"],
    ["missing", {}, 'Invalid argument "city": is required'],
    ["empty", { city: "" }, 'Invalid argument "city": must NOT have fewer than 1 characters'],
    ["nested", { city: "Oslo", stops: [{ days: 0 }] }, 'Invalid argument "stops[0].days"'],
    ["nested missing", { city: "Oslo", stops: [{}] }, 'Invalid argument "stops[0].days"'],
    ["unknown", { city: "Oslo", extra: 1 }, 'Invalid argument "extra": is not an accepted'],
    ["not an object", "Oslo", 'Invalid argument "arguments": must be object'],
  ];
  for (const [name, value, expected] of cases) {
    await t.step(name, () => assert.ok(messageOf(value).startsWith(expected), messageOf(value)));
  }
});

Deno.test("compileValidator() runs patterns on RE2: a catastrophic pattern answers at once", () => {
  const check = compileValidator({
    type: "object",
    properties: { text: { type: "string", pattern: "^(a+)+$" } },
  });
  // On V8's backtracking engine this argument takes seconds (measured in bench/regex.ts); RE2 is
  // linear, so the call returns. The assertion is on the answer, not on the time.
  const hostile = "a".repeat(31) + "b";
  assert.throws(() => check({ text: hostile }), ToolError);
  check({ text: "aaaa" });
});

Deno.test("compileValidator() refuses patterns RE2 cannot run and schemas over the limits", async (t) => {
  await t.step("a backreference", () => {
    assert.throws(() =>
      compileValidator({ type: "object", properties: { a: { type: "string", pattern: "(a)\\1" } } })
    );
  });
  await t.step("too large", () => {
    const big = { type: "object", description: "x".repeat(70_000) };
    assert.throws(() => compileValidator(big), RangeError);
  });
  await t.step("too deep", () => {
    let schema: Record<string, unknown> = { type: "object" };
    for (let i = 0; i < 40; i++) schema = { type: "object", properties: { a: schema } };
    assert.throws(() => compileValidator(schema), /deeper than/);
  });
  await t.step("patternProperties also run on RE2", () => {
    const check = compileValidator({
      type: "object",
      patternProperties: { "^(x+)+$": { type: "integer" } },
    });
    assert.throws(() => check({ xxxx: "not an integer" }), ToolError);
    check({ ["x".repeat(40) + "y"]: "anything" });
  });
});

Deno.test("compileValidator() checks 2020-12 schemas ($defs, $ref) in that dialect", () => {
  const check = compileValidator({
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    $defs: { address: { type: "object", properties: { city: { type: "string" } } } },
    properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
    additionalProperties: false,
  });
  check({ name: "a", address: { city: "b" } });
  assert.throws(() => check({ address: { city: 3 } }), /address\.city/);
  assert.throws(() => check({ other: 1 }), /"other": is not an accepted argument/);
});
