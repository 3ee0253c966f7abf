/**
 * Validates tool arguments against the tool's own JSON Schema (ajv), so what Describe advertises is
 * exactly what a call is checked against.
 */
import { Ajv, type ErrorObject } from "ajv";
import { invalidArgument } from "./tool_error.ts";
import type { JsonSchema } from "./tool.ts";

/** A compiled validator: returns the value when valid, throws INVALID_ARGUMENT naming the field. */
export type Validator = (value: unknown) => void;

const ajv = new Ajv({ allErrors: false, strict: false });

/** Compiles `schema` once; the returned function is cheap to call. */
export function compileValidator(schema: JsonSchema): Validator {
  const validate = ajv.compile(schema);
  return (value: unknown) => {
    if (validate(value)) return;
    const error = validate.errors?.[0];
    if (!error) throw invalidArgument("arguments", "does not match the tool's input schema");
    throw invalidArgument(fieldOf(error), describe(error));
  };
}

/** The dotted path of the field an ajv error is about, e.g. `destinations[0].days`. */
export function fieldOf(error: ErrorObject): string {
  const parts = error.instancePath.split("/").slice(1).map((part) =>
    part.replaceAll("~1", "/").replaceAll("~0", "~")
  );
  const missing = error.keyword === "required"
    ? String((error.params as { missingProperty: string }).missingProperty)
    : error.keyword === "additionalProperties"
    ? String((error.params as { additionalProperty: string }).additionalProperty)
    : undefined;
  if (missing !== undefined) parts.push(missing);
  let path = "";
  for (const part of parts) {
    path += /^\d+$/.test(part) ? `[${part}]` : path === "" ? part : `.${part}`;
  }
  return path === "" ? "arguments" : path;
}

function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case "required":
      return "is required";
    case "additionalProperties":
      return "is not an accepted argument";
    default:
      return error.message ?? "is invalid";
  }
}
