/**
 * The base of the platform's own errors, for every program (the ops tool, services, `lb`,
 * Prometheus's runner, the autoscaler): a condition a caller handles, with a stable `code`, the
 * process exit code it ends with, and its cause. `ops/errors.ts` builds the ops tool's on it.
 */

/** Options of {@linkcode PlatformError}. */
export interface PlatformErrorOptions {
  /** A stable machine-readable code, e.g. `DOCKER_UNREACHABLE`; default `FAILED`. */
  code?: string;
  /** The process exit code: 1 for a failure (default), 2 for a usage or configuration error. */
  exitCode?: number;
  cause?: unknown;
}

/** A failure a caller may handle; carries a code, an exit code and the cause. */
export class PlatformError extends Error {
  /** Stable machine-readable code. */
  readonly code: string;
  /** Process exit code. */
  readonly exitCode: number;

  constructor(message: string, options: PlatformErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PlatformError";
    this.code = options.code ?? "FAILED";
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Invalid configuration, every problem listed: exit code 2. */
export class ConfigurationError extends PlatformError {
  /** Each problem found, in order. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`Invalid configuration: ${problems.join("; ")}`, { code: "INVALID_CONFIG", exitCode: 2 });
    this.name = "ConfigurationError";
    this.problems = problems;
  }
}
