/**
 * The load balancer's model: what HAProxy should serve, built from Consul's health view. Every
 * Consul entry goes through the platform's one health parser (`services/runtime/consul/health.ts`),
 * which validates it: only IP literals, ports in range and plain IDs and names reach the model, so
 * nothing from Consul can add a line to `haproxy.cfg` or a command to the runtime API. Refused
 * entries are listed in the model for `lb` to log and count.
 */
import {
  type ConsulInstance,
  type InstanceHealth,
  parseServiceHealth,
  type RejectedEntry,
} from "../services/runtime/consul/health.ts";
import { isServiceName, printable } from "../services/runtime/consul/validate.ts";

export type { InstanceHealth, RejectedEntry };

/** One entry of Consul's `/v1/health/service/<name>` answer (the fields the model reads). */
export interface ConsulHealthEntry {
  Node: { Node: string; Address: string };
  Service: {
    ID: string;
    Service: string;
    Address: string;
    Port: number;
    Tags?: string[] | null;
    Meta?: Record<string, string> | null;
    Weights?: { Passing: number; Warning: number } | null;
  };
  Checks: { CheckID: string; Status: string; ServiceID?: string }[];
}

/**
 * What Consul says about the services the load balancer fronts: health answers as read, not yet
 * validated (entries are typed `unknown`: they may hold anything).
 */
export interface ConsulSnapshot {
  /** Every instance of the MCP router service, whatever its health. */
  routers: readonly unknown[];
  /** Other services that may ask to be exposed (Meta `lb_port`), by service name. */
  services: Readonly<Record<string, readonly unknown[]>>;
}

/** One service instance as HAProxy sees it. */
export interface LbInstance {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** HAProxy weight, 0..256, from Consul `Weights`. */
  readonly weight: number;
  readonly health: InstanceHealth;
}

/**
 * A server slot's state: `ready` takes traffic, `maint` takes none (critical or in maintenance),
 * `drain` finishes what it has (the instance left Consul), `empty` holds no instance.
 */
export type SlotState = "ready" | "maint" | "drain" | "empty";

/** A pre-allocated server line; instances move in and out at runtime, the line stays. */
export interface LbSlot {
  readonly name: string;
  readonly state: SlotState;
  readonly instance: LbInstance | null;
}

/** How a backend speaks: HTTP (the MCP routers), gRPC over h2, or plain TCP. */
export type BackendMode = "http" | "grpc" | "tcp";

/** A frontend with its backend of slots. */
export interface LbBackend {
  /** HAProxy proxy name of the backend. */
  readonly name: string;
  /** Consul service name. */
  readonly service: string;
  readonly mode: BackendMode;
  readonly port: number;
  readonly slots: readonly LbSlot[];
}

/** Load-balancing algorithms offered for the MCP routers. */
export type Balance =
  | "roundrobin"
  | "leastconn"
  | "random"
  | "source"
  // One router per MCP session while the routers stay the same: what a session has in flight on
  // its router (a tool's request to the client, subscriptions, its log level) then stays reachable.
  // Requests without the header (2026-07-28) are balanced round robin.
  | "hdr(mcp-session-id)";

/** Settings of the load balancer that do not come from Consul. */
export interface LbSettings {
  readonly bindAddress: string;
  readonly mcpPort: number;
  readonly statsPort: number;
  readonly balance: Balance;
  /** Basic-auth credentials for the stats page and `/metrics`; null for none. */
  readonly statsAuth: { readonly user: string; readonly password: string } | null;
  /** Path of the runtime API socket. */
  readonly runtimeSocket: string;
  /** Slots allocated at least per backend, so scaling up needs no reload. */
  readonly minSlots: number;
  readonly hardStopAfter: string;
  readonly maxReloads: number;
  /** Consul service name of the MCP routers. */
  readonly routerService: string;
  /** Open connections one source address may hold on the MCP port; 0: no limit. */
  readonly clientMaxConnections: number;
  /**
   * Requests per second one client (its bearer token, else its source address) may have served on
   * the MCP port, over a window of `clientRateBurst / clientMaxRequestRate` seconds; 0: no limit.
   */
  readonly clientMaxRequestRate: number;
  /** Requests one client may send at once before its rate applies. */
  readonly clientRateBurst: number;
  /** Requests one client may have in flight at once, open SSE streams included; 0: no limit. */
  readonly clientMaxConcurrent: number;
  /** Requests per second let through from one source address whatever its tokens (a NAT, a token rotator); 0: no limit. */
  readonly sourceMaxRequestRate: number;
  /** Connections each frontend accepts at once; more wait in the kernel's backlog. */
  readonly maxConnections: number;
  /** Requests one router is sent at once; more wait in HAProxy's queue; 0: no limit. */
  readonly serverMaxConnections: number;
  /** How long a request waits in the queue for a router before it gets 503, in ms. */
  readonly queueTimeoutMs: number;
  /** How long a client has to send a request's headers, in ms (408 after). */
  readonly headerTimeoutMs: number;
  /** How long a client has to send a request's body, in ms (408 after). */
  readonly bodyTimeoutMs: number;
  /** Inactivity allowed while a client is expected to send or to read what it was sent, in ms. */
  readonly clientTimeoutMs: number;
  /** How long an idle keep-alive connection waits for its next request, in ms. */
  readonly keepAliveTimeoutMs: number;
  /** Idle time before TCP keep-alive probes check that a client is still there, in ms. */
  readonly clientKeepAliveIdleMs: number;
}

/** A service whose Meta `lb_port` names a port another frontend holds; it is not exposed. */
export interface RefusedExposure {
  readonly service: string;
  readonly port: number;
  /** What holds the port: `mcp`, `stats`, or the service exposed on it. */
  readonly heldBy: string;
}

/** The whole model; rendering it gives a complete HAProxy config. */
export interface LbModel {
  readonly settings: LbSettings;
  readonly mcp: LbBackend;
  /** Services exposed as extra TCP/gRPC frontends, sorted by service name. */
  readonly exposed: readonly LbBackend[];
  /**
   * Services refused a frontend: HAProxy binds two frontends to one port without complaint and
   * splits the connections between them, so a clash must never reach the config.
   */
  readonly refused: readonly RefusedExposure[];
  /** Consul entries (and service names) that failed validation and were left out. */
  readonly rejected: readonly RejectedEntry[];
}

/** Defaults of {@linkcode LbSettings}. */
export const DEFAULT_LB_SETTINGS: LbSettings = Object.freeze({
  bindAddress: "0.0.0.0",
  mcpPort: 8080,
  statsPort: 8404,
  balance: "roundrobin",
  statsAuth: null,
  runtimeSocket: "/run/haproxy/admin.sock",
  minSlots: 16,
  hardStopAfter: "5m",
  maxReloads: 50,
  routerService: "mcp-router",
  clientMaxConnections: 256,
  clientMaxRequestRate: 200,
  clientRateBurst: 200,
  clientMaxConcurrent: 64,
  sourceMaxRequestRate: 2000,
  maxConnections: 4096,
  serverMaxConnections: 512,
  queueTimeoutMs: 2_000,
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  clientTimeoutMs: 60_000,
  keepAliveTimeoutMs: 60_000,
  clientKeepAliveIdleMs: 60_000,
});

/** Options of {@linkcode buildLbModel}. */
export interface BuildLbModelOptions {
  /** The model in force, so instances keep their slots and leavers drain. */
  previous?: LbModel | null;
}

const MAX_WEIGHT = 256;

/** Turns one validated Consul instance into HAProxy's view of it. */
export function toInstance(instance: ConsulInstance): LbInstance {
  const raw = instance.health === "warning" ? instance.weights.warning : instance.weights.passing;
  return {
    id: instance.id,
    address: instance.address,
    port: instance.port,
    weight: Math.max(0, Math.min(MAX_WEIGHT, raw)),
    health: instance.health,
  };
}

function stateOf(instance: LbInstance): SlotState {
  return instance.health === "passing" || instance.health === "warning" ? "ready" : "maint";
}

/** Number of slots for `count` instances: room to double before a reload is needed. */
export function slotCount(count: number, minSlots: number): number {
  let slots = Math.max(1, minSlots);
  while (slots < count) slots *= 2;
  return slots;
}

/**
 * Places instances into slots. An instance keeps its slot; one that left Consul drains in its
 * slot (unless it was not taking traffic); newcomers take free slots in ID order.
 */
export function assignSlots(
  prefix: string,
  instances: readonly LbInstance[],
  options: { previous?: readonly LbSlot[]; minSlots: number },
): LbSlot[] {
  const byId = new Map(instances.map((instance) => [instance.id, instance]));
  const previous = options.previous ?? [];
  const placed = new Set<string>();
  const kept: (LbSlot | null)[] = previous.map((slot) => {
    if (slot.instance === null) return null;
    const current = byId.get(slot.instance.id);
    if (current) {
      placed.add(current.id);
      return { name: slot.name, state: stateOf(current), instance: current };
    }
    if (slot.state === "ready" || slot.state === "drain") {
      return { name: slot.name, state: "drain", instance: slot.instance };
    }
    return null;
  });
  const newcomers = [...instances].filter((instance) => !placed.has(instance.id))
    .sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const occupied = kept.filter((slot) => slot !== null).length;
  const total = Math.max(previous.length, slotCount(occupied + newcomers.length, options.minSlots));
  const slots: LbSlot[] = [];
  for (let index = 0; index < total; index++) {
    const name = previous[index]?.name ?? `${prefix}${index + 1}`;
    const slot = kept[index] ?? null;
    if (slot) {
      slots.push(slot);
      continue;
    }
    const instance = newcomers.shift();
    slots.push(
      instance
        ? { name, state: stateOf(instance), instance }
        : { name, state: "empty", instance: null },
    );
  }
  return slots;
}

/** Frees the slots of drained instances (they finished their streams or ran out of time). */
export function releaseDrained(model: LbModel, ids: ReadonlySet<string>): LbModel {
  function release(backend: LbBackend): LbBackend {
    return {
      ...backend,
      slots: backend.slots.map((slot) =>
        slot.state === "drain" && slot.instance && ids.has(slot.instance.id)
          ? { name: slot.name, state: "empty", instance: null }
          : slot
      ),
    };
  }
  return { ...model, mcp: release(model.mcp), exposed: model.exposed.map(release) };
}

/** HAProxy proxy names allow letters, digits and `-_.:`; Consul names may hold more. */
export function proxyName(service: string): string {
  return service.replace(/[^A-Za-z0-9_.:-]/g, "_");
}

function exposure(
  instances: readonly ConsulInstance[],
): { port: number; mode: BackendMode } | null {
  for (const instance of instances) {
    const text = instance.meta.lb_port ?? "";
    const port = Number(text);
    if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) continue;
    const mode = instance.meta.lb_mode === "tcp" ? "tcp" : "grpc";
    return { port, mode };
  }
  return null;
}

/** One line for each refused exposure, for logs and warnings. */
export function describeRefused(refused: RefusedExposure): string {
  return `Not exposing "${refused.service}" on port ${refused.port}: ${
    refused.heldBy === "mcp" || refused.heldBy === "stats"
      ? `HAProxy's ${refused.heldBy} frontend`
      : `service "${refused.heldBy}"`
  } holds it`;
}

/** Builds the model from a Consul snapshot, keeping slots stable against `previous`. */
export function buildLbModel(
  snapshot: ConsulSnapshot,
  settings: LbSettings,
  options: BuildLbModelOptions = {},
): LbModel {
  const previous = options.previous ?? null;
  const rejected: RejectedEntry[] = [];
  const routers = parseServiceHealth(snapshot.routers, settings.routerService);
  rejected.push(...routers.rejected);
  const mcp: LbBackend = {
    name: proxyName(settings.routerService),
    service: settings.routerService,
    mode: "http",
    port: settings.mcpPort,
    slots: assignSlots("r", routers.instances.map(toInstance), {
      previous: previous?.mcp.slots,
      minSlots: settings.minSlots,
    }),
  };
  const exposed: LbBackend[] = [];
  const refused: RefusedExposure[] = [];
  const held = new Map([[settings.mcpPort, "mcp"], [settings.statsPort, "stats"]]);
  for (const service of Object.keys(snapshot.services).sort()) {
    if (!isServiceName(service)) {
      rejected.push({
        service: printable(service),
        id: "",
        reason: "service name is not a plain name",
      });
      continue;
    }
    const health = parseServiceHealth(snapshot.services[service], service);
    rejected.push(...health.rejected);
    const wanted = exposure(health.instances);
    if (wanted === null) continue;
    const heldBy = held.get(wanted.port);
    if (heldBy !== undefined) {
      refused.push({ service, port: wanted.port, heldBy });
      continue;
    }
    held.set(wanted.port, service);
    const before = previous?.exposed.find((backend) => backend.service === service);
    exposed.push({
      name: `svc_${proxyName(service)}`,
      service,
      mode: wanted.mode,
      port: wanted.port,
      slots: assignSlots("s", health.instances.map(toInstance), {
        previous: before?.slots,
        minSlots: Math.max(1, Math.ceil(settings.minSlots / 2)),
      }),
    });
  }
  return { settings, mcp, exposed, refused, rejected };
}
