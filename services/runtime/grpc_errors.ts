/** Turns a gRPC error from another service into a {@linkcode ToolError} with the same status. */
import { status } from "@grpc/grpc-js";
import { ToolError, type ToolErrorCode } from "./tool_error.ts";

const PASSED_THROUGH: readonly ToolErrorCode[] = [
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "UNAVAILABLE",
  "DEADLINE_EXCEEDED",
  "CANCELLED",
  "FAILED_PRECONDITION",
];

/** The ToolError for `error`: ToolErrors unchanged, gRPC statuses by name, anything else INTERNAL. */
export function toToolError(error: unknown, context: string): ToolError {
  if (error instanceof ToolError) return error;
  const code = (error as { code?: unknown })?.code;
  const details = (error as { details?: unknown })?.details;
  const message = typeof details === "string" && details !== ""
    ? details
    : error instanceof Error
    ? error.message
    : String(error);
  const name = typeof code === "number" ? status[code] as ToolErrorCode | undefined : undefined;
  const mapped = name !== undefined && PASSED_THROUGH.includes(name) ? name : "INTERNAL";
  return new ToolError(mapped, `${context}: ${message}`, { cause: error });
}
