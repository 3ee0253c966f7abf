/** Reads once from Consul what the load balancer needs (`lb render`); `lb sync` follows instead. */

import { type ConsulClient, consulPath } from "../services/runtime/consul/client.ts";
import { parseCatalogServices } from "../services/runtime/consul/health.ts";
import type { ConsulSnapshot, RejectedEntry } from "./model.ts";

/** The tag of the services `lb` may expose. */
export const PLATFORM_TAG = "platform";

/** The platform services to follow besides the routers, from a catalog answer; names validated. */
export function exposableServices(
  body: unknown,
  routerService: string,
): { names: string[]; rejected: readonly RejectedEntry[] } {
  const catalog = parseCatalogServices(body);
  const names = [...catalog.services]
    .filter(([name, tags]) => name !== routerService && tags.includes(PLATFORM_TAG))
    .map(([name]) => name);
  return { names, rejected: catalog.rejected };
}

/** The routers and every `platform`-tagged service with their health, read once. */
export async function readConsulSnapshot(
  consul: ConsulClient,
  routerService: string,
): Promise<{ snapshot: ConsulSnapshot; rejected: readonly RejectedEntry[] }> {
  const routers = await consul.get(consulPath("/v1/health/service", routerService));
  const { names, rejected } = exposableServices(
    await consul.get("/v1/catalog/services"),
    routerService,
  );
  const services: Record<string, unknown[]> = {};
  for (const name of names) {
    const body = await consul.get(consulPath("/v1/health/service", name));
    services[name] = Array.isArray(body) ? body : [];
  }
  return { snapshot: { routers: Array.isArray(routers) ? routers : [], services }, rejected };
}
