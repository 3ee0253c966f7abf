/** Errors the ops tool raises on purpose; `ops/main.ts` turns them into a message and an exit code. */

/** Options of {@linkcode OpsError}. */
export interface OpsErrorOptions {
  /** A stable machine-readable code, e.g. `DOCKER_UNREACHABLE`. */
  code?: string;
  /** The process exit code: 1 for a failure (default), 2 for a usage error. */
  exitCode?: number;
  cause?: unknown;
}

/** A failure a caller may handle; carries a code, an exit code and the cause. */
export class OpsError extends Error {
  /** Stable machine-readable code. */
  readonly code: string;
  /** Process exit code. */
  readonly exitCode: number;

  constructor(message: string, options: OpsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OpsError";
    this.code = options.code ?? "FAILED";
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A bad command line: exit code 2. */
export class UsageError extends OpsError {
  constructor(message: string, options: Omit<OpsErrorOptions, "exitCode"> = {}) {
    super(message, { code: "USAGE", ...options, exitCode: 2 });
    this.name = "UsageError";
  }
}
