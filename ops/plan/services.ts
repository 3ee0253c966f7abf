/** The services of the stack, the names the ops tool accepts for them, and how they are probed. */
import { UsageError } from "../errors.ts";

/** One service of the stack. */
export interface PlatformService {
  /** Name in stack.yml and in Swarm (without the stack prefix), e.g. `echo-agent`. */
  readonly name: string;
  /** Name in Consul, e.g. `agent-echo`. */
  readonly consulName: string;
  /** Short names accepted on the command line. */
  readonly aliases: readonly string[];
  /** Port the service listens on inside the overlay network. */
  readonly port: number;
  /** Its program, relative to the repository root; undefined for images with their own program. */
  readonly entrypoint?: string;
  /** Which image it runs: the shared services image or its own. */
  readonly image: "services" | "consul" | "lb" | "prometheus";
  /**
   * How its health is known: `consul` for services that register there (gRPC or HTTP checks),
   * `swarm` for the ones that do not (the Consul server itself, the load balancer), whose
   * Docker healthcheck is all there is.
   */
  readonly health: "consul" | "swarm";
  /** Whether more than one replica makes sense (a single Consul server does not). */
  readonly scalable: boolean;
  /** Deployed only when asked for (`deploy --with <name>`); left out of every other default. */
  readonly optional?: boolean;
}

/** Every service of a default deploy, in deploy order (optional ones: `OPTIONAL_SERVICES`). */
export const PLATFORM_SERVICES: readonly PlatformService[] = Object.freeze([
  {
    name: "consul",
    consulName: "consul",
    aliases: ["consul"],
    port: 8500,
    image: "consul",
    health: "swarm",
    scalable: false,
  },
  {
    // The Consul client agent of every node without a server (none on a single node).
    name: "consul-agent",
    consulName: "consul-agent",
    aliases: ["consul-agent"],
    port: 8500,
    image: "consul",
    health: "swarm",
    scalable: false,
  },
  {
    name: "echo-agent",
    consulName: "agent-echo",
    aliases: ["echo", "agent-echo"],
    port: 50052,
    entrypoint: "services/echo-agent/main.ts",
    image: "services",
    health: "consul",
    scalable: true,
  },
  {
    name: "weather-tool",
    consulName: "tool-weather",
    aliases: ["weather", "tool-weather"],
    port: 50053,
    entrypoint: "services/weather-tool/main.ts",
    image: "services",
    health: "consul",
    scalable: true,
  },
  {
    name: "itinerary-worker",
    consulName: "worker-itinerary",
    aliases: ["itinerary", "worker-itinerary"],
    port: 50054,
    entrypoint: "services/itinerary-worker/main.ts",
    image: "services",
    health: "consul",
    scalable: true,
  },
  {
    name: "mcp-router",
    consulName: "mcp-router",
    aliases: ["router"],
    port: 8080,
    entrypoint: "services/mcp-router/main.ts",
    image: "services",
    health: "consul",
    scalable: true,
  },
  {
    // HAProxy publishes host-mode ports: one task on every edge node (global mode).
    name: "lb",
    consulName: "lb",
    aliases: ["lb", "haproxy"],
    port: 8080,
    image: "lb",
    health: "swarm",
    scalable: false,
  },
  {
    // Metrics history for people and for the autoscaler; discovers every instance through Consul.
    name: "prometheus",
    consulName: "prometheus",
    aliases: ["prometheus"],
    port: 9090,
    image: "prometheus",
    health: "swarm",
    scalable: false,
  },
  {
    // Scales services by their `platform.autoscale.*` labels; one decision maker, on a manager.
    name: "autoscaler",
    consulName: "platform-autoscaler",
    aliases: ["autoscaler"],
    port: 9464,
    entrypoint: "services/autoscaler/main.ts",
    image: "services",
    health: "consul",
    scalable: false,
  },
]);

/** Services deployed only when asked for (`deploy --with <name>`). */
export const OPTIONAL_SERVICES: readonly PlatformService[] = Object.freeze([
  {
    name: "conformance-server",
    consulName: "tool-conformance",
    aliases: ["conformance", "tool-conformance"],
    port: 50055,
    entrypoint: "services/conformance-server/main.ts",
    image: "services",
    health: "consul",
    scalable: true,
    optional: true,
  },
]);

/** Every service the stack file may hold: the platform's and the optional ones. */
export const ALL_SERVICES: readonly PlatformService[] = Object.freeze([
  ...PLATFORM_SERVICES,
  ...OPTIONAL_SERVICES,
]);

/**
 * The services of a deploy with the optional services named in `names` (`--with`); a name that is
 * not an optional service is a usage error naming the ones there are.
 */
export function withOptional(
  names: readonly string[],
  services: readonly PlatformService[] = ALL_SERVICES,
): PlatformService[] {
  const optional = services.filter((service) => service.optional);
  const chosen = new Set<PlatformService>();
  for (const name of names) {
    const wanted = name.trim().toLowerCase();
    const found = optional.find((service) =>
      service.name === wanted || service.consulName === wanted || service.aliases.includes(wanted)
    );
    if (found === undefined) {
      throw new UsageError(
        `--with takes an optional service (${
          optional.map((service) => `"${service.name}"`).join(", ")
        }), got "${name}"`,
      );
    }
    chosen.add(found);
  }
  return services.filter((service) => !service.optional || chosen.has(service));
}

/** The services that register in Consul (the others are known to Swarm only). */
export function consulRegistered(
  services: readonly PlatformService[] = PLATFORM_SERVICES,
): PlatformService[] {
  return services.filter((service) => service.health === "consul");
}

/** The services that `scale all` and `scale down` act on. */
export function scalableServices(
  services: readonly PlatformService[] = PLATFORM_SERVICES,
): PlatformService[] {
  return services.filter((service) => service.scalable);
}

/** Finds a service by its Swarm name, Consul name or alias; unknown names are a usage error. */
export function resolveService(
  name: string,
  services: readonly PlatformService[] = PLATFORM_SERVICES,
): PlatformService {
  const wanted = name.trim().toLowerCase();
  const found = services.find((service) =>
    service.name === wanted || service.consulName === wanted || service.aliases.includes(wanted)
  );
  if (found) return found;
  const known = services.map((service) => service.aliases[0]).join(", ");
  throw new UsageError(`Unknown service "${name}": use one of ${known} or their full names`);
}

/** Swarm's name of a stack service: `<stack>_<service>`. */
export function swarmServiceName(stack: string, service: PlatformService): string {
  return `${stack}_${service.name}`;
}
