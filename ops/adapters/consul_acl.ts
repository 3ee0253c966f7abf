/**
 * Puts the platform's ACL plan (`ops/plan/consul_acl.ts`) into a Consul agent with ACLs on:
 * bootstraps the ACL system once, then creates or updates the policies and tokens so that a second
 * run changes nothing and hands back the same tokens. Through the platform's one Consul client.
 */
import { ConsulClient, ConsulError, consulPath } from "../../services/runtime/consul/client.ts";
import {
  type AclPlan,
  ANONYMOUS_TOKEN_ACCESSOR,
  type ExistingToken,
  planAcls,
  planTokenActions,
  platformAclInput,
} from "../plan/consul_acl.ts";
import { ALL_SERVICES } from "../plan/services.ts";

/** What `ensureConsulAcls` did, and the secret token of each program (service name, `lb`, `agent`). */
export interface AclOutcome {
  /** Secret IDs by program. */
  readonly tokens: Readonly<Record<string, string>>;
  /** Policies and tokens created or updated; empty when Consul already matched the plan. */
  readonly changes: readonly string[];
}

/**
 * Bootstraps Consul's ACL system; resolves with the management token's secret, or `undefined`
 * when the system was bootstrapped before (Consul answers 403 then: the token is the one kept
 * from the first time).
 */
export async function bootstrapConsulAcls(consulUrl: string): Promise<string | undefined> {
  const client = new ConsulClient(consulUrl);
  try {
    const text = await client.put("/v1/acl/bootstrap");
    const secret = (JSON.parse(text) as { SecretID?: unknown }).SecretID;
    if (typeof secret !== "string") throw new Error("Consul's bootstrap answer has no SecretID");
    return secret;
  } catch (error) {
    if (error instanceof ConsulError && error.status === 403) return undefined;
    throw error;
  }
}

interface RawPolicy {
  ID: string;
  Name: string;
  Description?: string;
  Rules?: string;
}

interface RawToken {
  AccessorID: string;
  SecretID?: string;
  Description?: string;
  Policies?: { ID?: string; Name?: string }[] | null;
  ServiceIdentities?: { ServiceName: string }[] | null;
}

/** Options of {@linkcode ensureConsulAcls}. */
export interface EnsureAclOptions {
  plan: AclPlan;
  /**
   * The SecretID each program's token must have, by program (`deploy` mounts these as Docker
   * secrets before the tokens exist). A token holding another secret is replaced: Consul never
   * changes the SecretID of a token. Programs missing here get the secret Consul makes.
   */
  secrets?: Readonly<Record<string, string>>;
}

/**
 * Makes Consul hold `plan` (matched by policy name and token description), keeps the anonymous
 * token without policies, and returns every program's token. Safe to run on every deploy.
 */
export async function ensureConsulAcls(
  consulUrl: string,
  managementToken: string,
  options: EnsureAclOptions,
): Promise<AclOutcome> {
  const { plan, secrets = {} } = options;
  const consul = new ConsulClient(consulUrl, { token: managementToken });
  const changes: string[] = [];

  const listed = await consul.get("/v1/acl/policies") as RawPolicy[];
  for (const policy of plan.policies) {
    const found = listed.find((entry) => entry.Name === policy.name);
    const body = { Name: policy.name, Description: policy.description, Rules: policy.rules };
    if (found === undefined) {
      await consul.put("/v1/acl/policy", { body });
      changes.push(`created policy "${policy.name}"`);
      continue;
    }
    const current = await consul.get(consulPath("/v1/acl/policy", found.ID)) as RawPolicy;
    if (current.Rules !== policy.rules || current.Description !== policy.description) {
      await consul.put(consulPath("/v1/acl/policy", found.ID), { body: { ID: found.ID, ...body } });
      changes.push(`updated policy "${policy.name}"`);
    }
  }

  const rawTokens = await consul.get("/v1/acl/tokens") as RawToken[];
  const existing: ExistingToken[] = rawTokens.map((token) => ({
    accessorId: token.AccessorID,
    description: token.Description ?? "",
    policies: (token.Policies ?? []).map((policy) => policy.Name ?? ""),
    serviceIdentities: (token.ServiceIdentities ?? []).map((identity) => identity.ServiceName),
  }));
  const tokens: Record<string, string> = {};
  for (const action of planTokenActions(plan.tokens, existing)) {
    const wanted = secrets[action.token.program];
    const body = {
      Description: action.token.description,
      Policies: action.token.policies.map((name) => ({ Name: name })),
      ServiceIdentities: action.token.serviceIdentities.map((name) => ({ ServiceName: name })),
    };
    const create = async () =>
      JSON.parse(
        await consul.put("/v1/acl/token", {
          body: wanted === undefined ? body : { ...body, SecretID: wanted },
        }),
      ) as RawToken;
    let token: RawToken;
    if (action.kind === "create") {
      token = await create();
      changes.push(`created token "${action.token.description}"`);
    } else {
      const path = consulPath("/v1/acl/token", action.accessorId);
      token = await consul.get(path) as RawToken;
      if (wanted !== undefined && token.SecretID !== wanted) {
        await consul.delete(path);
        token = await create();
        changes.push(`replaced token "${action.token.description}" (another secret)`);
      } else if (action.kind === "update") {
        token = JSON.parse(
          await consul.put(path, { body: { AccessorID: action.accessorId, ...body } }),
        ) as RawToken;
        changes.push(`updated token "${action.token.description}"`);
      }
    }
    if (typeof token.SecretID !== "string") {
      throw new Error(`Consul gave no secret for token "${action.token.description}"`);
    }
    if (wanted !== undefined && token.SecretID !== wanted) {
      throw new Error(
        `Consul did not keep the given secret of token "${action.token.description}"`,
      );
    }
    tokens[action.token.program] = token.SecretID;
  }

  const anonymous = rawTokens.find((token) => token.AccessorID === ANONYMOUS_TOKEN_ACCESSOR);
  if ((anonymous?.Policies ?? []).length > 0 || (anonymous?.ServiceIdentities ?? []).length > 0) {
    await consul.put(consulPath("/v1/acl/token", ANONYMOUS_TOKEN_ACCESSOR), {
      body: {
        AccessorID: ANONYMOUS_TOKEN_ACCESSOR,
        Description: "Anonymous Token",
        Policies: [],
        ServiceIdentities: [],
      },
    });
    changes.push("removed every policy from the anonymous token");
  }
  return { tokens, changes };
}

/**
 * For `deploy`: makes the Consul at `consulUrl` hold the stack's policies and tokens (with the
 * management token; with `secrets`, the SecretID of each program's token) and returns each
 * program's token, by Consul service name (`agent-echo`, `mcp-router`, …), `lb`, `prometheus`,
 * `probe` and `agent`.
 */
export async function ensurePlatformAcls(
  consulUrl: string,
  managementToken: string,
  options: { stack: string; secrets?: Readonly<Record<string, string>> },
): Promise<AclOutcome> {
  // The optional services' tokens too: `deploy --with` may add them at any deploy.
  const plan = planAcls(platformAclInput(options.stack, { services: ALL_SERVICES }));
  return await ensureConsulAcls(consulUrl, managementToken, { plan, secrets: options.secrets });
}
