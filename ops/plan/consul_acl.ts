/**
 * The platform's Consul ACLs (Consul 1.8's policy and token system, `default_policy = "deny"`):
 * which policies exist and which token each program gets. Pure: the adapter
 * (`ops/adapters/consul_acl.ts`) compares this with what Consul holds and creates or updates the
 * difference.
 *
 * - Each service (agents, tools, workers) gets a token with a service identity for its own name:
 *   it may register (and deregister) that service only, and read the catalog (discovery).
 * - The routers: the service identity `mcp-router`, plus read on the catalog and on the strategy
 *   keys, and write on their own KV prefix only (ended sessions).
 * - `lb`, Prometheus's Consul discovery and `ops probe`: read on services and nodes, nothing else.
 * - The autoscaler: the service identity `platform-autoscaler` (it registers for Prometheus) and
 *   write on its own KV prefix (its status document).
 * - The agents (`acl.tokens.agent`): write on nodes (their own registration), read on services.
 * - Anonymous requests: no policy at all; the anonymous token is kept without any.
 * - The ops tool, the UI and `deploy` use the management token.
 */
import { WEIGHTS_KV_PREFIX } from "../../services/runtime/instance_weight.ts";

/** A policy the platform keeps. */
export interface AclPolicy {
  /** Consul policy name, unique. */
  readonly name: string;
  readonly description: string;
  /** HCL rules. */
  readonly rules: string;
}

/** A token the platform keeps; found again by its description. */
export interface AclToken {
  /** Which program uses it: a Consul service name, `lb`, `prometheus` or `agent`. */
  readonly program: string;
  /** Unique; how the adapter recognises the token on a later run. */
  readonly description: string;
  /** Policy names. */
  readonly policies: readonly string[];
  /** Service identities (service names). */
  readonly serviceIdentities: readonly string[];
}

/** Every policy and token, sorted by name and program. */
export interface AclPlan {
  readonly policies: readonly AclPolicy[];
  readonly tokens: readonly AclToken[];
}

/** What the plan is made from. */
export interface AclPlanInput {
  /** Consul names of the services that register themselves (agents, tools, workers). */
  readonly services: readonly string[];
  /** Consul name of the MCP routers. */
  readonly routerService: string;
  /** KV prefix the routers write (ended sessions), ending in `/`. */
  readonly routerKvPrefix: string;
  /** KV prefix the routers read (strategies), ending in `/`. */
  readonly strategyKvPrefix: string;
  /** Prefix of names and descriptions, e.g. the stack name. */
  readonly prefix: string;
  /** Programs that only read the catalog (services, nodes), e.g. `lb`, `prometheus`. */
  readonly readers: readonly string[];
  /** The autoscaler's Consul name and the KV prefix it writes its status under. */
  readonly autoscaler?: { readonly service: string; readonly kvPrefix: string };
  /** KV prefix of the instance weights every registering program reads, ending in `/`. */
  readonly weightsKvPrefix?: string;
}

/** The accessor ID Consul gives the anonymous token. */
export const ANONYMOUS_TOKEN_ACCESSOR = "00000000-0000-0000-0000-000000000002";

const CATALOG_READ = `service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
`;

/** The policies and tokens for `input`. */
export function planAcls(input: AclPlanInput): AclPlan {
  const prefixes = [input.routerKvPrefix, input.strategyKvPrefix];
  if (input.autoscaler) prefixes.push(input.autoscaler.kvPrefix);
  if (input.weightsKvPrefix) prefixes.push(input.weightsKvPrefix);
  for (const prefix of prefixes) {
    if (!/^[A-Za-z0-9_./-]+\/$/.test(prefix)) {
      throw new RangeError(`KV prefix must be a plain path ending in "/", got "${prefix}"`);
    }
  }
  const name = (what: string) => `${input.prefix}-${what}`;
  const policies: AclPolicy[] = [
    {
      name: name("router"),
      description: "MCP routers: read the catalog and strategies, write their own KV prefix",
      rules: `${CATALOG_READ}key_prefix "${input.strategyKvPrefix}" {
  policy = "read"
}
key_prefix "${input.routerKvPrefix}" {
  policy = "write"
}
`,
    },
    {
      name: name("catalog-read"),
      description: "lb and Prometheus's discovery: read services and nodes",
      rules: CATALOG_READ,
    },
    {
      name: name("agent"),
      description: "Consul agents: register their node, read services",
      rules: `node_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "read"
}
`,
    },
  ];
  // Every program that registers itself follows its instance's weight key.
  const weights = input.weightsKvPrefix ? [name("weights-read")] : [];
  if (input.weightsKvPrefix) {
    policies.push({
      name: name("weights-read"),
      description: "Registering programs: read the instance weights",
      rules: `key_prefix "${input.weightsKvPrefix}" {
  policy = "read"
}
`,
    });
  }
  // The autoscaler registers like a service but has a token of its own below: one token a program.
  const services = input.services.filter((service) => service !== input.autoscaler?.service);
  const tokens: AclToken[] = [
    ...[...new Set(services)].sort().map((service) => ({
      program: service,
      description: `${input.prefix}: service ${service}`,
      policies: [...weights],
      serviceIdentities: [service],
    })),
    {
      program: input.routerService,
      description: `${input.prefix}: service ${input.routerService}`,
      policies: [name("router"), ...weights],
      serviceIdentities: [input.routerService],
    },
    ...[...new Set(input.readers)].sort().map((program) => ({
      program,
      description: `${input.prefix}: ${program}`,
      policies: [name("catalog-read")],
      serviceIdentities: [],
    })),
    {
      program: "agent",
      description: `${input.prefix}: agent`,
      policies: [name("agent")],
      serviceIdentities: [],
    },
  ];
  if (input.autoscaler) {
    policies.push({
      name: name("autoscaler"),
      description: "The autoscaler: write its status document",
      rules: `key_prefix "${input.autoscaler.kvPrefix}" {
  policy = "write"
}
`,
    });
    tokens.push({
      program: input.autoscaler.service,
      description: `${input.prefix}: service ${input.autoscaler.service}`,
      policies: [name("autoscaler"), ...weights],
      serviceIdentities: [input.autoscaler.service],
    });
  }
  return {
    policies: policies.sort((a, b) => a.name.localeCompare(b.name)),
    tokens: tokens.sort((a, b) => a.program.localeCompare(b.program)),
  };
}

/** What Consul holds of a token, as far as the plan cares. */
export interface ExistingToken {
  readonly accessorId: string;
  readonly description: string;
  readonly policies: readonly string[];
  readonly serviceIdentities: readonly string[];
}

/** What to do about one planned token. */
export type TokenAction =
  | { readonly kind: "create"; readonly token: AclToken }
  | { readonly kind: "update"; readonly token: AclToken; readonly accessorId: string }
  | { readonly kind: "keep"; readonly token: AclToken; readonly accessorId: string };

/** Compares planned tokens with Consul's (matched by description). */
export function planTokenActions(
  tokens: readonly AclToken[],
  existing: readonly ExistingToken[],
): TokenAction[] {
  return tokens.map((token) => {
    const found = existing.find((entry) => entry.description === token.description);
    if (found === undefined) return { kind: "create", token };
    const same = sameSet(found.policies, token.policies) &&
      sameSet(found.serviceIdentities, token.serviceIdentities);
    return { kind: same ? "keep" : "update", token, accessorId: found.accessorId };
  });
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");
}

/** The plan of the stack `stack` for its services (every Consul-registered one but the routers). */
export function platformAclInput(
  stack: string,
  options: {
    services: readonly { consulName: string; health: string }[];
    /** Default `mcp-router`. */
    routerService?: string;
  },
): AclPlanInput {
  const { services, routerService = "mcp-router" } = options;
  return {
    services: services
      .filter((service) => service.health === "consul" && service.consulName !== routerService)
      .map((service) => service.consulName),
    routerService,
    routerKvPrefix: "platform/mcp-router/",
    strategyKvPrefix: "platform/lb-strategy/",
    prefix: stack,
    // `ops probe` runs its callers in containers that discover through Consul.
    readers: ["lb", "probe", "prometheus"],
    autoscaler: { service: "platform-autoscaler", kvPrefix: "platform/autoscaler/" },
    weightsKvPrefix: WEIGHTS_KV_PREFIX,
  };
}
