/** An error a tool raises on purpose; it becomes a gRPC status with the same message. */
import { status } from "@grpc/grpc-js";

/** gRPC status codes a tool may answer with. */
export type ToolErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "UNAVAILABLE"
  | "DEADLINE_EXCEEDED"
  | "CANCELLED"
  | "FAILED_PRECONDITION"
  | "INTERNAL";

/** A failed tool call with the gRPC status it maps to. */
export class ToolError extends Error {
  /** The gRPC status name. */
  readonly code: ToolErrorCode;

  constructor(code: ToolErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ToolError";
    this.code = code;
  }

  /** The numeric gRPC status. */
  get grpcStatus(): status {
    return status[this.code];
  }
}

/** Shorthand for an INVALID_ARGUMENT naming the field at fault. */
export function invalidArgument(field: string, problem: string): ToolError {
  return new ToolError("INVALID_ARGUMENT", `Invalid argument "${field}": ${problem}`);
}
