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
