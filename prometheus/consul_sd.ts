/**
 * Consul as a Prometheus HTTP service discovery source.
 *
 * Debian 12's `prometheus` package is built without Consul discovery (its changelog: "Disable
 * Consul SD until its Debian package is back in shape"; `consul_sd_configs` is refused as an unknown
 * field). This endpoint gives Prometheus's `http_sd_configs` the same targets and the same
 * `__meta_consul_*` labels `consul_sd_configs` would, so the scrape config relabels as it would with
 * Consul discovery, and switching back is one line per job when a build has it. Consul is read
 * through the platform's one Consul module (token, timeouts, URL-encoded names, and the one
 * validating health parser): an entry that fails validation is no target.
 */
import { type ConsulClient, consulPath } from "../services/runtime/consul/client.ts";
import {
  type InstanceHealth,
  parseCatalogServices,
  parseServiceHealth,
} from "../services/runtime/consul/health.ts";

/** A Prometheus HTTP SD target group. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** A label name Prometheus accepts, from a Consul Meta key (as consul_sd_configs does). */
export function metaLabel(key: string): string {
  return `__meta_consul_service_metadata_${key.replace(/[^A-Za-z0-9_]/g, "_")}`;
}

/** consul_sd_configs' health label: Consul reports maintenance as a critical check. */
function healthLabel(health: InstanceHealth): string {
  return health === "maintenance" ? "critical" : health;
}

/**
 * The target groups of the health entries of `service`, one per instance. Entries are Consul's
 * answer: each goes through the platform's health parser, and one it refuses is left out.
 */
export function consulTargetGroups(entries: unknown, service: string): TargetGroup[] {
  const groups: TargetGroup[] = [];
  for (const instance of parseServiceHealth(entries, service).instances) {
    const labels: Record<string, string> = {
      __meta_consul_service: instance.service,
      __meta_consul_service_id: instance.id,
      __meta_consul_service_address: instance.address,
      __meta_consul_service_port: String(instance.port),
      __meta_consul_address: instance.nodeAddress,
      __meta_consul_node: instance.node,
      __meta_consul_health: healthLabel(instance.health),
      // Like consul_sd_configs: tags between separators, so `,platform,` matches a whole tag.
      __meta_consul_tags: instance.tags.length === 0 ? "" : `,${instance.tags.join(",")},`,
    };
    for (const [key, value] of Object.entries(instance.meta)) labels[metaLabel(key)] = value;
    groups.push({ targets: [`${instance.address}:${instance.port}`], labels });
  }
  return groups;
}

/** Options of {@linkcode fetchConsulTargets}. */
export interface FetchConsulTargetsOptions {
  /** Timeout of each request to Consul, in ms (default 3000). */
  timeoutMs?: number;
}

/** Every registered instance of every service in Consul's catalog, as target groups. */
export async function fetchConsulTargets(
  consul: ConsulClient,
  options: FetchConsulTargetsOptions = {},
): Promise<TargetGroup[]> {
  const timeoutMs = options.timeoutMs ?? 3000;
  const { services } = parseCatalogServices(
    await consul.get("/v1/catalog/services", { timeoutMs }),
  );
  const names = [...services.keys()];
  const answers = await Promise.all(
    names.map((name) => consul.get(consulPath("/v1/health/service", name), { timeoutMs })),
  );
  return answers.flatMap((answer, index) =>
    Array.isArray(answer) ? consulTargetGroups(answer, names[index]) : []
  );
}
