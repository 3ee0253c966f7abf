/** Decides which services change replica counts for `scale <service> <n>`, `scale all <n>`, `scale down`. */
import { UsageError } from "../errors.ts";
import { type PlatformService, resolveService, scalableServices } from "./services.ts";
import type { SwarmService } from "./state.ts";

/** The most replicas one command may ask for: a guard against typos on a small machine. */
export const MAX_REPLICAS = 50;

/** One replica change. */
export interface ScaleAction {
  service: string;
  from: number;
  to: number;
}

/** What `scale` was asked: each service and its target. */
export interface ScaleRequest {
  targets: { service: PlatformService; replicas: number }[];
}

/** Parses a replica count: an integer from 0 to {@linkcode MAX_REPLICAS}, else a usage error. */
export function parseReplicas(text: string): number {
  if (!/^\d+$/.test(text.trim())) {
    throw new UsageError(
      `Invalid replica count "${text}": expected an integer from 0 to ${MAX_REPLICAS}`,
    );
  }
  const count = Number(text);
  if (count > MAX_REPLICAS) {
    throw new UsageError(`Invalid replica count "${text}": at most ${MAX_REPLICAS} replicas`);
  }
  return count;
}

/** Reads `scale` arguments: `<service> <n>`, `all <n>` or `down`. */
export function parseScaleArgs(
  target: string,
  count: string | undefined,
  services: readonly PlatformService[],
): ScaleRequest {
  if (target === "down") {
    if (count !== undefined) throw new UsageError(`"scale down" takes no count, got "${count}"`);
    return { targets: scalableServices(services).map((service) => ({ service, replicas: 1 })) };
  }
  if (count === undefined) throw new UsageError(`Missing replica count: "scale ${target} <n>"`);
  const replicas = parseReplicas(count);
  if (target === "all") {
    return { targets: scalableServices(services).map((service) => ({ service, replicas })) };
  }
  const service = resolveService(target, services);
  if (!service.scalable && replicas !== 1) {
    throw new UsageError(`Service "${service.name}" runs as exactly one replica`);
  }
  return { targets: [{ service, replicas }] };
}

/** The changes needed; services already at their target are left out. Missing services fail. */
export function planScale(request: ScaleRequest, actual: readonly SwarmService[]): ScaleAction[] {
  const actions: ScaleAction[] = [];
  for (const { service, replicas } of request.targets) {
    const current = actual.find((entry) => entry.name === service.name);
    if (!current) {
      throw new UsageError(`Service "${service.name}" is not deployed: run "deploy" first`);
    }
    if (current.replicas !== replicas) {
      actions.push({ service: service.name, from: current.replicas, to: replicas });
    }
  }
  return actions;
}
