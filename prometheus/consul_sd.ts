/**
 * Consul as a Prometheus HTTP service discovery source.
 *
 * Debian 12's `prometheus` package is built without Consul discovery (its changelog: "Disable
 * Consul SD until its Debian package is back in shape"; `consul_sd_configs` is refused as an unknown
 * field). This endpoint gives Prometheus's `http_sd_configs` the same targets and the same
 * `__meta_consul_*` labels `consul_sd_configs` would, so the scrape config relabels as it would with
 * Consul discovery, and switching back is one line per job when a build has it. Plain `fetch`: the
 * npm `consul` client adds nothing for two read-only calls.
 */

/** One entry of Consul's `/v1/health/service/<name>`, as far as it is read here. */
export interface ConsulHealthEntry {
  Node?: { Node?: unknown; Address?: unknown };
  Service?: {
    ID?: unknown;
    Service?: unknown;
    Address?: unknown;
    Port?: unknown;
    Tags?: unknown;
    Meta?: unknown;
  };
  Checks?: { Status?: unknown }[];
}

/** A Prometheus HTTP SD target group. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

const HOST = /^[A-Za-z0-9][A-Za-z0-9.\-:]*$/;

/** A label name Prometheus accepts, from a Consul Meta key (as consul_sd_configs does). */
export function metaLabel(key: string): string {
  return `__meta_consul_service_metadata_${key.replace(/[^A-Za-z0-9_]/g, "_")}`;
}

/**
 * The target groups of Consul health entries, one per instance. Entries are Consul's answer, so
 * each field is checked: an instance with no usable address or port is left out.
 */
export function consulTargetGroups(entries: readonly ConsulHealthEntry[]): TargetGroup[] {
  const groups: TargetGroup[] = [];
  for (const entry of entries) {
    const service = entry.Service;
    if (!service || typeof service.ID !== "string" || typeof service.Service !== "string") continue;
    const nodeAddress = typeof entry.Node?.Address === "string" ? entry.Node.Address : "";
    const address = typeof service.Address === "string" && service.Address !== ""
      ? service.Address
      : nodeAddress;
    const port = service.Port;
    if (
      !HOST.test(address) || !Number.isInteger(port) || (port as number) < 1 ||
      (port as number) > 65535
    ) continue;
    const checks = Array.isArray(entry.Checks) ? entry.Checks : [];
    const statuses = checks.map((check) => check?.Status);
    const health = statuses.includes("critical")
      ? "critical"
      : statuses.includes("warning")
      ? "warning"
      : "passing";
    const tags = Array.isArray(service.Tags)
      ? service.Tags.filter((tag): tag is string => typeof tag === "string")
      : [];
    const labels: Record<string, string> = {
      __meta_consul_service: service.Service,
      __meta_consul_service_id: service.ID,
      __meta_consul_service_address: address,
      __meta_consul_service_port: String(port),
      __meta_consul_address: nodeAddress,
      __meta_consul_node: typeof entry.Node?.Node === "string" ? entry.Node.Node : "",
      __meta_consul_health: health,
      // Like consul_sd_configs: tags between separators, so `,platform,` matches a whole tag.
      __meta_consul_tags: tags.length === 0 ? "" : `,${tags.join(",")},`,
    };
    if (service.Meta && typeof service.Meta === "object") {
      for (const [key, value] of Object.entries(service.Meta as Record<string, unknown>)) {
        if (typeof value === "string") labels[metaLabel(key)] = value;
      }
    }
    groups.push({ targets: [`${address}:${port}`], labels });
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
  consulUrl: string,
  options: FetchConsulTargetsOptions = {},
): Promise<TargetGroup[]> {
  const timeoutMs = options.timeoutMs ?? 3000;
  const get = async (path: string): Promise<unknown> => {
    const response = await fetch(`${consulUrl}${path}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`Consul answered ${response.status} to "${path}"`);
    }
    return await response.json();
  };
  const catalog = await get("/v1/catalog/services");
  if (!catalog || typeof catalog !== "object" || Array.isArray(catalog)) {
    throw new Error("Consul's catalog is not an object");
  }
  const names = Object.keys(catalog).sort();
  const answers = await Promise.all(
    names.map((name) => get(`/v1/health/service/${encodeURIComponent(name)}`)),
  );
  return answers.flatMap((answer) =>
    Array.isArray(answer) ? consulTargetGroups(answer as ConsulHealthEntry[]) : []
  );
}
