/** Errors the ops tool raises on purpose; `ops/main.ts` turns them into a message and an exit code. */
import { PlatformError, type PlatformErrorOptions } from "../services/runtime/platform_error.ts";

/** Options of {@linkcode OpsError}. */
export type OpsErrorOptions = PlatformErrorOptions;

/** A failure a caller may handle; carries a code, an exit code and the cause. */
export class OpsError extends PlatformError {
  constructor(message: string, options: OpsErrorOptions = {}) {
    super(message, options);
    this.name = "OpsError";
  }
}

/** A bad command line: exit code 2. */
export class UsageError extends OpsError {
  constructor(message: string, options: Omit<OpsErrorOptions, "exitCode"> = {}) {
    super(message, { code: "USAGE", ...options, exitCode: 2 });
    this.name = "UsageError";
  }
}
