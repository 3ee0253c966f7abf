/**
 * Validates tool arguments against the tool's own JSON Schema (ajv), so what Describe advertises is
 * exactly what a call is checked against.
 *
 * Schemas come from backends, which are untrusted, so they are bounded before ajv sees them
 * ({@linkcode checkSchemaLimits}: size and depth) and their regular expressions (`pattern`,
 * `patternProperties`) run on RE2 (`npm:re2js`, a pure-JS port of RE2: linear time in the input,
 * no backtracking) through ajv's `code.regExp` option, instead of V8's backtracking engine. A
 * pattern RE2 cannot run (backreferences, lookaround) makes the schema fail to compile, so the
 * tool is refused rather than checked by a backtracking engine. Measured with `deno task bench
 * regex` (bench/results/regex-*.json): `^(a+)+$` against `a` x n then `b`, V8 1.0 s at n = 28
 * (8.2 s extrapolated at 31, the issue saw 9 s), RE2 0.01 ms at 31 and 2.8 ms at 100,000.
 */
import { Ajv, type ErrorObject } from "ajv";
import { RE2JS } from "re2js";
import { Ajv2020 } from "ajv/dist/2020.js";
import { invalidArgument } from "./tool_error.ts";
import type { JsonSchema } from "./tool.ts";

/** A compiled validator: returns the value when valid, throws INVALID_ARGUMENT naming the field. */
export type Validator = (value: unknown) => void;

/** Largest schema accepted, as JSON text. */
export const MAX_SCHEMA_BYTES = 64 * 1024;
/** Deepest nesting of objects and arrays accepted in a schema. */
export const MAX_SCHEMA_DEPTH = 32;

/** A regular expression on RE2, in the shape ajv calls (`test`). */
export const re2RegExp = Object.assign(
  (pattern: string, flags: string): { test(input: string): boolean; toString(): string } => {
    // ajv passes "u" (unicode), which RE2 always is; no other flag is used for JSON Schema.
    const compiled = RE2JS.compile(pattern, flags.includes("i") ? RE2JS.CASE_INSENSITIVE : 0);
    return {
      test: (input: string) => compiled.test(input),
      // ajv caches compiled patterns by this text: it must differ between patterns.
      toString: () => `/${pattern}/${flags}`,
    };
  },
  // Named for ajv's standalone code output, which this project does not use.
  { code: "re2RegExp" },
);

const ajv = new Ajv({ allErrors: false, strict: false, code: { regExp: re2RegExp } });
/** For schemas that name the 2020-12 dialect (MCP's default, SEP-1613); draft-07 has no `$defs`. */
const ajv2020 = new Ajv2020({ allErrors: false, strict: false, code: { regExp: re2RegExp } });
const DIALECT_2020_12 = "https://json-schema.org/draft/2020-12/schema";

/**
 * Throws a `RangeError` naming the limit when `schema` is larger than {@linkcode MAX_SCHEMA_BYTES}
 * as JSON or nests deeper than {@linkcode MAX_SCHEMA_DEPTH}.
 */
export function checkSchemaLimits(schema: unknown): void {
  const text = JSON.stringify(schema) ?? "";
  if (text.length > MAX_SCHEMA_BYTES) {
    throw new RangeError(`schema is ${text.length} bytes, more than ${MAX_SCHEMA_BYTES}`);
  }
  // Depth from the text: brackets outside strings (JSON.stringify escapes quotes inside them).
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === "\\") i++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === "{" || char === "[") {
      if (++depth > MAX_SCHEMA_DEPTH) {
        throw new RangeError(`schema nests deeper than ${MAX_SCHEMA_DEPTH} levels`);
      }
    } else if (char === "}" || char === "]") depth--;
  }
}

/** Compiles `schema` once (within the limits); the returned function is cheap to call. */
export function compileValidator(schema: JsonSchema): Validator {
  checkSchemaLimits(schema);
  const compiler = schema.$schema === DIALECT_2020_12 ? ajv2020 : ajv;
  const validate = compiler.compile(schema);
  // ajv keeps every compiled schema in its cache; catalogs change, so forget it once compiled.
  compiler.removeSchema(schema);
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
