/** Reads the stack as Swarm, Consul and HAProxy see it. Private to the commands. */
import { readStatsAuth } from "../adapters/mcp_token.ts";
import { mcpTokenPath, statsAuthPath } from "../plan/front_door_secrets.ts";
import { type ServiceStatus, stackStatus } from "../plan/agreement.ts";
import type { HaproxyView } from "../../haproxy/stats_view.ts";
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

/** How clients of the stack authenticate, as `deploy` and `status` report it. */
export interface FrontDoorAuth {
  /** `token`: MCP wants a bearer token; `none`: deployed with `--no-auth`. */
  mcp: "token" | "none";
  /** Where the token (or the operator's tokens) is; null with `--no-auth`. */
  tokenFile: string | null;
  /** Where HAProxy's stats `user:password` is. */
  statsAuthFile: string;
}

/** The file `deploy` keeps the MCP client token in when none is given. */
export function keptMcpTokenFile(context: CommandContext): string {
  return `${context.config.root}/${mcpTokenPath(context.config.stack)}`;
}

/** How clients authenticate, given whether the stack runs with `--no-auth`. */
export function frontDoorAuth(context: CommandContext, noAuth: boolean): FrontDoorAuth {
  return {
    mcp: noAuth ? "none" : "token",
    tokenFile: noAuth ? null : context.config.mcpTokensFile ?? keptMcpTokenFile(context),
    statsAuthFile: context.config.statsAuthFile ?? keptStatsAuthFile(context),
  };
}

/** The MCP endpoint line of `deploy` and `status`: where to send the token, or a warning. */
export function describeMcpEndpoint(context: CommandContext, noAuth: boolean): string {
  const auth = frontDoorAuth(context, noAuth);
  return auth.tokenFile === null
    ? `! MCP endpoint: ${mcpUrl(context)} takes calls WITHOUT credentials (deployed with --no-auth)`
    : `MCP endpoint: ${
      mcpUrl(context)
    } (send "Authorization: Bearer <token>", token in "${auth.tokenFile}")`;
}

const credentialsRead = new WeakMap<CommandContext, Promise<string | undefined>>();

/** The file `deploy` keeps HAProxy's stats credentials in when none are given. */
export function keptStatsAuthFile(context: CommandContext): string {
  return `${context.config.root}/${statsAuthPath(context.config.stack)}`;
}

/**
 * HAProxy's stats credentials (`user:password`) from `PLATFORM_STATS_AUTH_FILE`, else from the
 * file `deploy` keeps, checked; read once per command, however often the command polls.
 * Undefined when there is neither (a stack deployed before stats credentials were the default).
 */
export function readStatsCredentials(context: CommandContext): Promise<string | undefined> {
  let read = credentialsRead.get(context);
  if (read === undefined) {
    read = readStatsAuth(context.config.root, { env: context.env, stack: context.config.stack });
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
