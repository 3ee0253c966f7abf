/** Decides the `docker service update` arguments of `update`, and reads how a rolling update ended. */
import { UsageError } from "../errors.ts";

/** What `update` was asked to change. */
export interface UpdateRequest {
  image?: string;
  env: Record<string, string>;
  force: boolean;
}

/** Where a rolling update stands. */
export type UpdateOutcome =
  | "none"
  | "updating"
  | "completed"
  | "rolling-back"
  | "rolled-back"
  | "paused";

/** Parses repeated `--env K=V` values. */
export function parseEnvAssignments(values: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const value of values) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(value);
    if (!match) throw new UsageError(`Invalid --env "${value}": expected KEY=VALUE`);
    env[match[1]] = match[2];
  }
  return env;
}

/** Checks that exactly what can be done was asked, and returns the arguments after `service update`. */
export function planUpdateArgs(request: UpdateRequest): string[] {
  const entries = Object.entries(request.env);
  if (!request.image && entries.length === 0 && !request.force) {
    throw new UsageError('Nothing to update: give "--image", "--env KEY=VALUE" or "--force"');
  }
  const args: string[] = [];
  if (request.image) args.push("--image", request.image, "--no-resolve-image");
  for (const [key, value] of entries) args.push("--env-add", `${key}=${value}`);
  if (request.force) args.push("--force");
  return args;
}

/** Maps Swarm's `UpdateStatus.State` to an outcome. */
export function updateOutcome(state: string | undefined): UpdateOutcome {
  switch (state) {
    case undefined:
    case "":
      return "none";
    case "updating":
      return "updating";
    case "completed":
      return "completed";
    case "rollback_started":
      return "rolling-back";
    case "rollback_completed":
      return "rolled-back";
    case "paused":
    case "rollback_paused":
      return "paused";
    default:
      return "updating";
  }
}
