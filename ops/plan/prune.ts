/** Decides which Consul registrations belong to no live Swarm task, for `prune`. */
import { instanceMatchesTask, isAlive } from "./agreement.ts";
import type { PlatformService } from "./services.ts";
import type { ConsulInstance, SwarmService } from "./state.ts";

/** A registration to remove. */
export interface PruneAction {
  service: string;
  instanceId: string;
  status: string;
  /** The Consul node holding it, when known. */
  node?: string;
}

/**
 * Registrations of the platform's Consul services that no live task (running or starting) owns.
 * A starting task may already be registered, so it protects its registration.
 */
export function planPrune(
  services: readonly PlatformService[],
  swarm: readonly SwarmService[],
  instances: readonly ConsulInstance[],
): PruneAction[] {
  const actions: PruneAction[] = [];
  for (const service of services) {
    if (service.health !== "consul") continue;
    const tasks = swarm.find((entry) => entry.name === service.name)?.tasks.filter(isAlive) ?? [];
    for (const instance of instances) {
      if (instance.service !== service.consulName) continue;
      if (tasks.some((task) => instanceMatchesTask(instance, task))) continue;
      actions.push({
        service: service.consulName,
        instanceId: instance.id,
        status: instance.status,
        ...(instance.node === undefined ? {} : { node: instance.node }),
      });
    }
  }
  return actions;
}
