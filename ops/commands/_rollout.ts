/** Follows a rolling update or rollback of one service, showing each task as it is replaced. */
import { OpsError } from "../errors.ts";
import { type UpdateOutcome, updateOutcome } from "../plan/update.ts";
import type { SwarmService } from "../plan/state.ts";
import type { CommandContext } from "../context.ts";
import type { PlatformService } from "../plan/services.ts";
import { waitForAgreement } from "./_wait.ts";

const POLL_MS = 500;
// When Swarm found nothing to change it starts no update; after this long with no sign of one, the
// service is taken as already up to date.
const NO_UPDATE_GRACE_MS = 10_000;

/** How a followed rollout ended. */
export interface RolloutResult {
  outcome: UpdateOutcome | "unchanged";
  message: string;
  /** Task transitions seen, in order: `<slot>.<task id> <image> <state>`. */
  events: string[];
  /** The last error a task reported during the rollout, e.g. `task: non-zero exit (3)`. */
  taskError?: string;
}

/** Finds one stack service by short name. */
export async function findService(context: CommandContext, name: string): Promise<SwarmService> {
  const services = await context.docker.services(context.config.stack);
  const found = services.find((service) => service.name === name);
  if (!found) {
    throw new OpsError(`Service "${name}" is not deployed in stack "${context.config.stack}"`, {
      code: "NOT_DEPLOYED",
    });
  }
  return found;
}

/**
 * Polls the service until its update (started after `before`) ends: completed, rolled back or
 * paused. Shows every task state change as it happens.
 */
export async function followRollout(
  context: CommandContext,
  before: SwarmService,
): Promise<RolloutResult> {
  const started = context.now();
  const deadline = started + context.config.timeoutSeconds * 1000;
  const seen = new Map<string, string>(before.tasks.map((task) => [task.id, task.state]));
  const events: string[] = [];
  let taskError: string | undefined;
  for (;;) {
    await context.sleep(POLL_MS);
    const service = await findService(context, before.name);
    for (const task of service.tasks) {
      if (seen.get(task.id) === task.state) continue;
      seen.set(task.id, task.state);
      const event = `${task.slot ?? "-"}.${task.id.slice(0, 12)} ${task.image} ${task.state}` +
        (task.error ? ` (${task.error})` : "");
      events.push(event);
      if (task.error) taskError = task.error;
      context.progress.log(`  task ${event}`);
    }
    const isNew = service.updateStartedAt !== undefined &&
      service.updateStartedAt !== before.updateStartedAt;
    const outcome = isNew ? updateOutcome(service.updateState) : "none";
    const message = service.updateMessage ?? "";
    if (outcome === "completed" || outcome === "rolled-back" || outcome === "paused") {
      return { outcome, message, events, taskError };
    }
    if (!isNew && events.length === 0 && context.now() - started > NO_UPDATE_GRACE_MS) {
      return { outcome: "unchanged", message: "Swarm found nothing to change", events };
    }
    if (context.now() > deadline) {
      throw new OpsError(
        `Timed out after ${context.config.timeoutSeconds}s following the update of "${before.name}" ` +
          `(state "${service.updateState ?? "none"}")`,
        { code: "TIMEOUT" },
      );
    }
  }
}

/**
 * Waits until Swarm and Consul agree on `service` after a finished rollout, then reports it:
 * `<verb> <service> ... in N s`.
 */
export async function reportRollout(
  context: CommandContext,
  service: PlatformService,
  rollout: RolloutResult,
  options: { started: number; verb: string },
): Promise<void> {
  const snapshot = await waitForAgreement(context, [service], { what: `"${service.name}"` });
  const after = snapshot.swarm.find((entry) => entry.name === service.name);
  const seconds = Math.round((context.now() - options.started) / 100) / 10;
  context.result(
    {
      service: service.name,
      outcome: rollout.outcome,
      image: after?.image,
      events: rollout.events,
      status: snapshot.statuses.find((status) => status.service === service.name),
      seconds,
    },
    `${options.verb} ${service.name} to ${after?.image} (${rollout.outcome}) in ${
      seconds.toFixed(1)
    }s`,
  );
}
