/** Reads once from Consul what the load balancer needs (`lb render`); `lb sync` follows instead. */

import type { ConsulHealthEntry, ConsulSnapshot } from "../render/haproxy_model.ts";

async function getJson(consulUrl: string, path: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${consulUrl}${path}`, { signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot reach Consul at "${consulUrl}": ${reason}`, { cause: error });
  }
  if (!response.ok) {
    const body = (await response.text()).trim();
    throw new Error(`Consul at "${consulUrl}" answered ${response.status} to "${path}": ${body}`);
  }
  return await response.json();
}

/** The routers and every `platform`-tagged service with their health, read once. */
export async function readConsulSnapshot(
  consulUrl: string,
  routerService: string,
): Promise<ConsulSnapshot> {
  const routers = await getJson(
    consulUrl,
    `/v1/health/service/${routerService}`,
  ) as ConsulHealthEntry[];
  const catalog = await getJson(consulUrl, "/v1/catalog/services") as Record<string, string[]>;
  const services: Record<string, ConsulHealthEntry[]> = {};
  for (const [name, tags] of Object.entries(catalog)) {
    if (name === routerService || !(tags ?? []).includes("platform")) continue;
    services[name] = await getJson(consulUrl, `/v1/health/service/${name}`) as ConsulHealthEntry[];
  }
  return { routers, services };
}
