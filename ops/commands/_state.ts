/** Reads the stack as Swarm and Consul see it. Private to the commands. */
import { type ServiceStatus, stackStatus } from "../plan/agreement.ts";
import type { PlatformService } from "../plan/services.ts";
import type { ConsulInstance, SwarmService } from "../plan/state.ts";
import type { CommandContext } from "../context.ts";

/** One reading of Swarm and Consul. */
export interface StackSnapshot {
  swarm: SwarmService[];
  consulReachable: boolean;
  instances: ConsulInstance[];
  statuses: ServiceStatus[];
}

/** Reads Swarm's services and Consul's registrations of `services` (default: all). */
export async function readSnapshot(
  context: CommandContext,
  services: readonly PlatformService[] = context.services,
): Promise<StackSnapshot> {
  const swarm = await context.docker.services(context.config.stack);
  const consulReachable = swarm.length > 0 && await context.consul.ready();
  const names = services.filter((service) => service.image !== "consul")
    .map((service) => service.consulName);
  const instances = consulReachable ? await context.consul.instances(names) : [];
  const statuses = stackStatus(services, swarm, instances, { consulReachable });
  return { swarm, consulReachable, instances, statuses };
}
