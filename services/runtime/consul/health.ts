/**
 * The platform's one reading of Consul's health answers (`/v1/health/service/<name>`) and catalog
 * (`/v1/catalog/services`): every entry is validated (see `validate.ts`) and given one of four
 * health states, defined here once for the ops tool, `lb`, the services and the router.
 *
 * - `maintenance`: the node or the service is in maintenance mode (`_node_maintenance`,
 *   `_service_maintenance:<id>`); it wins over everything else.
 * - `critical`: any check critical, node checks included: an instance on a node whose `serfHealth`
 *   is critical (the agent is gone) is critical, whatever its own checks last said.
 * - `warning`: no check critical, at least one warning.
 * - `passing`: every check passing (an instance without checks passes, as in Consul).
 *
 * An entry that fails validation is not an instance: it is returned in `rejected` with the reason,
 * for the caller to log and count, and never stops the other entries from being read.
 */
import { isIpLiteral, isPort, isServiceId, isServiceName, printable } from "./validate.ts";

/** An instance's health; see the module doc for the one definition. */
export type InstanceHealth = "passing" | "warning" | "critical" | "maintenance";

/** One validated service instance. */
export interface ConsulInstance {
  readonly id: string;
  readonly service: string;
  /** The node name, or `""` when Consul gave none that validates. */
  readonly node: string;
  /** An IP literal: the service address, else the node's. */
  readonly address: string;
  /** The node's address when it is an IP literal, else `""`. */
  readonly nodeAddress: string;
  readonly port: number;
  /** Consul `Weights` (Passing 1..65535, Warning 0..65535); 1 and 1 when unset. */
  readonly weights: { readonly passing: number; readonly warning: number };
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  readonly health: InstanceHealth;
}

/** An entry that was not taken, and why. */
export interface RejectedEntry {
  /** The service it was read for. */
  readonly service: string;
  /** Its ID, printable and quoted (it may be anything). */
  readonly id: string;
  readonly reason: string;
}

/** A health answer read: the valid instances sorted by ID, and the entries refused. */
export interface ServiceHealth {
  readonly instances: readonly ConsulInstance[];
  readonly rejected: readonly RejectedEntry[];
}

const MAX_TAGS = 64;
const MAX_META = 64;
const MAX_TEXT = 512;
const META_KEY = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_WEIGHT = 65535;

/** Reads a `/v1/health/service/<service>` body; throws only when it is not an array. */
export function parseServiceHealth(body: unknown, service: string): ServiceHealth {
  if (!Array.isArray(body)) throw new TypeError("Consul health answer is not an array");
  const instances: ConsulInstance[] = [];
  const rejected: RejectedEntry[] = [];
  const seen = new Set<string>();
  for (const entry of body) {
    const result = readEntry(entry, service);
    if (typeof result === "string") {
      rejected.push({ service, id: printable(entry?.Service?.ID), reason: result });
    } else if (seen.has(result.id)) {
      rejected.push({ service, id: printable(result.id), reason: "duplicate service ID" });
    } else {
      seen.add(result.id);
      instances.push(result);
    }
  }
  instances.sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return { instances, rejected };
}

/** An instance's health from its checks (service and node checks alike). */
export function healthOf(
  checks: readonly { CheckID?: unknown; Status?: unknown }[],
): InstanceHealth {
  let health: InstanceHealth = "passing";
  for (const check of checks) {
    const id = typeof check?.CheckID === "string" ? check.CheckID : "";
    if (id === "_node_maintenance" || id.startsWith("_service_maintenance:")) return "maintenance";
    const status = check?.Status;
    // An unknown status is no proof of health.
    if (status !== "passing" && status !== "warning") health = "critical";
    else if (status === "warning" && health === "passing") health = "warning";
  }
  return health;
}

function readEntry(entry: unknown, service: string): ConsulInstance | string {
  if (typeof entry !== "object" || entry === null) return "entry is not an object";
  const { Service: svc, Node: node, Checks: checks } = entry as Record<string, unknown>;
  if (typeof svc !== "object" || svc === null) return "entry has no Service";
  const s = svc as Record<string, unknown>;
  if (!isServiceId(s.ID)) return `service ID ${printable(s.ID)} is not a plain name`;
  if (s.Service !== service) {
    return `service name ${printable(s.Service)} is not the service asked for`;
  }
  const nodeFields = typeof node === "object" && node !== null
    ? node as Record<string, unknown>
    : {};
  const address = s.Address === "" || s.Address === undefined ? nodeFields.Address : s.Address;
  if (!isIpLiteral(address)) return `address ${printable(address)} is not an IP literal`;
  if (!isPort(s.Port)) return `port ${printable(s.Port)} is not an integer from 1 to 65535`;
  const weights = readWeights(s.Weights);
  if (typeof weights === "string") return weights;
  const tags = s.Tags ?? [];
  if (
    !Array.isArray(tags) || tags.length > MAX_TAGS ||
    !tags.every((tag) => typeof tag === "string" && tag.length <= MAX_TEXT)
  ) return "tags are not a short list of strings";
  const meta = readMeta(s.Meta);
  if (meta === undefined) return "meta is not a small map of names to strings";
  if (checks !== undefined && checks !== null && !Array.isArray(checks)) {
    return "checks are not a list";
  }
  return Object.freeze({
    id: s.ID,
    service,
    node: isServiceId(nodeFields.Node) ? nodeFields.Node : "",
    address,
    nodeAddress: isIpLiteral(nodeFields.Address) ? nodeFields.Address : "",
    port: s.Port,
    weights,
    tags: Object.freeze([...tags as string[]]),
    meta,
    health: healthOf((checks ?? []) as { CheckID?: unknown; Status?: unknown }[]),
  });
}

function readWeights(value: unknown): ConsulInstance["weights"] | string {
  if (value === undefined || value === null) return { passing: 1, warning: 1 };
  const { Passing, Warning } = value as Record<string, unknown>;
  const ok = (n: unknown, min: number) =>
    typeof n === "number" && Number.isInteger(n) && n >= min && n <= MAX_WEIGHT;
  if (!ok(Passing, 1) || !ok(Warning, 0)) {
    return `weights ${printable(value)} are not integers from 1 (warning 0) to ${MAX_WEIGHT}`;
  }
  return Object.freeze({ passing: Passing as number, warning: Warning as number });
}

function readMeta(value: unknown): Readonly<Record<string, string>> | undefined {
  if (value === undefined || value === null) return Object.freeze({});
  if (typeof value !== "object" || Array.isArray(value)) return undefined;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_META) return undefined;
  for (const [key, text] of entries) {
    if (!META_KEY.test(key) || typeof text !== "string" || text.length > MAX_TEXT) return undefined;
  }
  return Object.freeze(Object.fromEntries(entries) as Record<string, string>);
}

/** The services of a `/v1/catalog/services` answer whose names validate, with the refused names. */
export interface CatalogServices {
  /** Tags by service name, sorted by name. */
  readonly services: ReadonlyMap<string, readonly string[]>;
  readonly rejected: readonly RejectedEntry[];
}

/** Reads a `/v1/catalog/services` body; throws only when it is not an object. */
export function parseCatalogServices(body: unknown): CatalogServices {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new TypeError("Consul catalog answer is not an object of service names");
  }
  const services = new Map<string, readonly string[]>();
  const rejected: RejectedEntry[] = [];
  for (const name of Object.keys(body).sort()) {
    const tags = (body as Record<string, unknown>)[name];
    if (!isServiceName(name)) {
      rejected.push({
        service: printable(name),
        id: "",
        reason: "service name is not a plain name",
      });
      continue;
    }
    const list = Array.isArray(tags) ? tags.filter((tag) => typeof tag === "string") : [];
    services.set(name, Object.freeze(list as string[]));
  }
  return { services, rejected };
}

/** One line for a rejected entry, for logs. */
export function describeRejected(entry: RejectedEntry): string {
  return entry.id === ""
    ? `Ignoring Consul service ${entry.service}: ${entry.reason}`
    : `Ignoring instance ${entry.id} of "${entry.service}" read from Consul: ${entry.reason}`;
}
