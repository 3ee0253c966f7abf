/**
 * The stack's Consul secrets: the management token, the gossip key, the agents' tokens and every
 * program's token, their Docker secret names, and where the deploying machine keeps the
 * management token. The front door's credentials (the MCP client token, HAProxy's stats
 * password) are derived the same way when the deploying machine has none of its own
 * (ops/plan/front_door_secrets.ts).
 *
 * Only the management token is random. Every other value is derived from it (HMAC-SHA-256 with a
 * label per value), so `deploy` can always make the tokens Consul must hold, with the SecretIDs
 * that the stack's Docker secrets carry, without ever reading a secret back from Docker (it
 * cannot) or keeping more than one file. A derived value gives nothing back about the management
 * token or about another value; a new management token (after `destroy --volumes`) changes all
 * of them.
 */
import { DEFAULT_STACK } from "../config.ts";
import { GOSSIP_KEY_BYTES, gossipKey } from "./gossip_key.ts";

/** Where the deploying machine keeps the default stack's management token, under the root. */
export const MANAGEMENT_TOKEN_PATH = ".platform/secrets/consul-management-token";

/**
 * The file `name` of `stack`'s secrets kept on the deploying machine, relative to the project
 * root: the default stack's sit in `.platform/secrets/`, another stack's in a folder of its own,
 * so stacks deployed from one checkout (tests, a cluster) never overwrite each other's.
 */
export function stackSecretPath(stack: string, name: string): string {
  return stack === DEFAULT_STACK
    ? `.platform/secrets/${name}`
    : `.platform/secrets/${stack}/${name}`;
}

/** The management token file of `stack` ({@linkcode MANAGEMENT_TOKEN_PATH} for the default one). */
export function managementTokenPath(stack: string): string {
  return stackSecretPath(stack, "consul-management-token");
}

/** The Consul token each stack service mounts (`CONSUL_HTTP_TOKEN_FILE`), by stack service. */
export const STACK_SERVICE_TOKENS: Readonly<Record<string, string>> = Object.freeze({
  "echo-agent": "agent-echo",
  "weather-tool": "tool-weather",
  "itinerary-worker": "worker-itinerary",
  // Optional (`deploy --with conformance-server`): its token is made with every other.
  "conformance-server": "tool-conformance",
  "mcp-router": "mcp-router",
  autoscaler: "platform-autoscaler",
  lb: "lb",
  prometheus: "prometheus",
  consul: "agent",
  "consul-agent": "agent",
});

/** The programs whose token the stack keeps as a Docker secret (the probe's is made when run). */
export const SECRET_TOKEN_PROGRAMS: readonly string[] = Object.freeze(
  [...new Set(Object.values(STACK_SERVICE_TOKENS))].sort(),
);

/** The Docker secret names of a stack's Consul secrets. */
export interface ConsulSecretNames {
  readonly managementToken: string;
  readonly gossipKey: string;
  /** `acl.tokens.agent_master`: the agents' local token, valid before any server answers. */
  readonly agentRecoveryToken: string;
  /** By program (Consul service name, `lb`, `prometheus`, `agent`). */
  readonly tokens: Readonly<Record<string, string>>;
}

/** The names of `stack`'s Consul secrets, as stack.yml spells them (`${SECRET_PREFIX}_…`). */
export function consulSecretNames(stack: string): ConsulSecretNames {
  return {
    managementToken: `${stack}_consul-management-token`,
    gossipKey: `${stack}_consul-gossip-key`,
    agentRecoveryToken: `${stack}_consul-agent-recovery-token`,
    tokens: Object.fromEntries(
      SECRET_TOKEN_PROGRAMS.map((program) => [program, `${stack}_consul-token-${program}`]),
    ),
  };
}

/** The values derived from one management token. */
export interface ConsulSecretValues {
  readonly gossipKey: string;
  readonly agentRecoveryToken: string;
  /** By program. */
  readonly tokens: Readonly<Record<string, string>>;
  /** The MCP client token `deploy` offers when none is given (43 base64url characters). */
  readonly mcpClientToken: string;
  /** HAProxy's stats password `deploy` offers when no credentials are given. */
  readonly statsPassword: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `token` is a Consul token as the platform makes them (a lower-case UUID). */
export function isConsulToken(token: string): boolean {
  return UUID.test(token);
}

/** A new random management token (a version 4 UUID). */
export function newManagementToken(): string {
  return crypto.randomUUID();
}

/** The secrets of `programs` derived from `managementToken`. */
export async function deriveConsulSecrets(
  managementToken: string,
  programs: readonly string[],
): Promise<ConsulSecretValues> {
  if (!isConsulToken(managementToken)) {
    throw new RangeError("The Consul management token must be a lower-case UUID");
  }
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(managementToken),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const derive = async (label: string) =>
    new Uint8Array(
      await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`agent-platform ${label}`)),
    );
  const gossip = await derive("consul gossip key");
  const tokens: Record<string, string> = {};
  for (const program of [...new Set(programs)].sort()) {
    tokens[program] = uuidFrom(await derive(`consul token ${program}`));
  }
  return {
    gossipKey: gossipKey(() => gossip.slice(0, GOSSIP_KEY_BYTES)),
    agentRecoveryToken: uuidFrom(await derive("consul agent recovery token")),
    tokens,
    mcpClientToken: base64Url(await derive("mcp client token")),
    statsPassword: base64Url((await derive("lb stats password")).slice(0, 24)),
  };
}

/** RFC 4648 base64url without padding: a bearer token (RFC 6750 b64token) and a safe password. */
function base64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** A version 4, variant 1 UUID from the first 16 of `bytes` (RFC 9562, section 5.4). */
function uuidFrom(bytes: Uint8Array): string {
  const b = bytes.slice(0, 16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}
