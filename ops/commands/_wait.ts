/** Waits until Swarm and Consul agree on services. Private to the commands. */
import { OpsError } from "../errors.ts";
import { describeProgress } from "../plan/agreement.ts";
import type { PlatformService } from "../plan/services.ts";
import type { CommandContext } from "../context.ts";
import { readSnapshot, type StackSnapshot } from "./_state.ts";
import { removeRegistrations } from "./prune.ts";
import { planPrune, type PruneAction } from "../plan/prune.ts";

const POLL_MS = 1_000;

/** Options of {@linkcode waitForAgreement}. */
export interface WaitOptions {
  /** What is being waited for, for the timeout message. */
  what: string;
  /**
   * Removes, while waiting, the registrations no live task owns once two polls in a row saw them:
   * an earlier stack's instances (Consul kept its data) may pass their checks at addresses the new
   * tasks reuse, and would otherwise keep the counts from ever agreeing. Two polls, because Swarm
   * and Consul are read one after the other: a task starting between the reads looks unowned once.
   * When given, the removed registrations are appended to it.
   */
  removeGhosts?: PruneAction[];
}

/**
 * Polls until every service in `services` has its desired replicas running in Swarm and passing in
 * Consul; shows progress; throws after the configured timeout.
 */
export async function waitForAgreement(
  context: CommandContext,
  services: readonly PlatformService[],
  options: WaitOptions,
): Promise<StackSnapshot> {
  const deadline = context.now() + context.config.timeoutSeconds * 1000;
  const names = new Set(services.map((service) => service.name));
  let last = "";
  let seenUnowned = new Set<string>();
  for (;;) {
    let snapshot: StackSnapshot | undefined;
    try {
      snapshot = await readSnapshot(context);
    } catch (error) {
      // Consul restarting or a task vanishing mid-read: try again until the deadline.
      last = (error as Error).message;
    }
    if (snapshot && options.removeGhosts) {
      const unowned = planPrune(services, snapshot.swarm, snapshot.instances);
      const ghosts = unowned.filter((action) => seenUnowned.has(action.instanceId));
      seenUnowned = new Set(unowned.map((action) => action.instanceId));
      if (ghosts.length > 0) {
        options.removeGhosts.push(...await removeRegistrations(context, ghosts));
        snapshot = undefined;
      }
    }
    if (snapshot) {
      const watched = snapshot.statuses.filter((status) => names.has(status.service));
      last = watched.map(describeProgress).join(" | ");
      context.progress.update(last);
      if (watched.every((status) => status.converged)) {
        context.progress.done();
        return snapshot;
      }
    }
    if (context.now() > deadline) {
      context.progress.done();
      throw new OpsError(
        `Timed out after ${context.config.timeoutSeconds}s waiting for ${options.what}: ${last}`,
        { code: "TIMEOUT" },
      );
    }
    await context.sleep(POLL_MS);
  }
}
