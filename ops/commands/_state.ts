/** Reads the stack as Swarm, Consul and HAProxy see it. Private to the commands. */
import { readTextFile } from "../adapters/files.ts";
import { type ServiceStatus, stackStatus } from "../plan/agreement.ts";
import type { HaproxyView } from "../../haproxy/stats_view.ts";
import { parseStatsCredentials } from "../plan/secrets.ts";
import { consulRegistered, type PlatformService } from "../plan/services.ts";
import type { ConsulInstance, SwarmService } from "../plan/state.ts";
import type { CommandContext } from "../context.ts";

/** The Consul service HAProxy fronts, and its backend name in HAProxy's config. */
const ROUTER_SERVICE = "mcp-router";

/** One reading of Swarm, Consul and HAProxy. */
export interface StackSnapshot {
  swarm: SwarmService[];
  consulReachable: boolean;
  instances: ConsulInstance[];
  /** HAProxy's view of the routers; null when the stack runs no load balancer. */
  lb: HaproxyView | null;
  statuses: ServiceStatus[];
}

/** HAProxy's stats page as published on this machine. */
export function statsUrl(context: CommandContext): string {
  return `http://127.0.0.1:${context.config.statsPort}/stats`;
}

/** The MCP endpoint as published on this machine. */
export function mcpUrl(context: CommandContext): string {
  return `http://127.0.0.1:${context.config.mcpPort}/mcp`;
}

const credentialsRead = new WeakMap<CommandContext, Promise<string | undefined>>();

/**
 * HAProxy's stats credentials (`user:password`) from `PLATFORM_STATS_AUTH_FILE`, checked; read
 * once per command, however often the command polls. Undefined when no file is set.
 */
export function readStatsCredentials(context: CommandContext): Promise<string | undefined> {
  let read = credentialsRead.get(context);
  if (read === undefined) {
    const file = context.config.statsAuthFile;
    read = file
      ? readTextFile(file).then((text) => parseStatsCredentials(text, file))
      : Promise.resolve(undefined);
    credentialsRead.set(context, read);
  }
  return read;
}

/** Reads Swarm's services, Consul's registrations and HAProxy's servers (default: every service). */
export async function readSnapshot(
  context: CommandContext,
  services: readonly PlatformService[] = context.services,
): Promise<StackSnapshot> {
  const swarm = await context.docker.services(context.config.stack);
  const consulReachable = swarm.length > 0 && await context.consul.ready();
  const names = consulRegistered(services).map((service) => service.consulName);
  const instances = consulReachable ? await context.consul.instances(names) : [];
  const lbService = swarm.find((service) => service.name === "lb");
  let lb: HaproxyView | null = null;
  if (lbService && lbService.replicas > 0 && names.includes(ROUTER_SERVICE)) {
    const credentials = await readStatsCredentials(context);
    lb = await context.haproxy.readView(statsUrl(context), ROUTER_SERVICE, { credentials });
  }
  const statuses = stackStatus(services, swarm, instances, {
    consulReachable,
    lb: lb && { service: ROUTER_SERVICE, view: lb },
  });
  return { swarm, consulReachable, instances, lb, statuses };
}
