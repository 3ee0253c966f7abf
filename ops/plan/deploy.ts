/** Decides what `deploy` changes: new services, new images, and replica counts to keep. */
import type { PlatformService } from "./services.ts";
import type { SwarmService } from "./state.ts";

/** What happens to one service. */
export interface DeployAction {
  service: string;
  action: "create" | "update" | "unchanged";
  image: string;
  /** The image it runs now, when it exists. */
  from?: string;
  /** Replicas to keep (the current count) for an existing service; undefined: the stack file's. */
  replicas?: number;
}

/**
 * Compares the images a deploy wants with what Swarm runs. Existing services keep their replica
 * count, so a deploy never undoes `scale`; a service whose image tag is unchanged is not restarted.
 */
export function planDeploy(
  services: readonly PlatformService[],
  images: Readonly<Record<string, string>>,
  actual: readonly SwarmService[],
): DeployAction[] {
  return services.map((service) => {
    const image = images[service.name];
    const current = actual.find((entry) => entry.name === service.name);
    if (!current) return { service: service.name, action: "create", image };
    return {
      service: service.name,
      action: current.image === image ? "unchanged" : "update",
      image,
      from: current.image,
      // Replica counts of scalable services are the operator's; the others (Consul servers,
      // global services) come from the stack file.
      replicas: service.scalable ? current.replicas : undefined,
    };
  });
}

/** One line per action, for the plan shown before applying. */
export function describeDeployAction(action: DeployAction): string {
  switch (action.action) {
    case "create":
      return `+ ${action.service}: create with ${action.image}`;
    case "update":
      return `~ ${action.service}: ${action.from} -> ${action.image} (rolling${
        action.replicas === undefined ? "" : `, ${action.replicas} replicas`
      })`;
    case "unchanged":
      return `= ${action.service}: unchanged${
        action.replicas === undefined ? "" : ` (${action.replicas} replicas)`
      }`;
  }
}
