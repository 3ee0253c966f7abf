/**
 * The stack's Consul secrets on the deploying machine and in Swarm: the management token file,
 * the Docker secrets derived from it, and the ACL tokens in Consul. Private to the commands.
 */
import { ensurePlatformAcls } from "../adapters/consul_acl.ts";
import { readOptionalTextFile, writeSecretFile } from "../adapters/files.ts";
import { OpsError } from "../errors.ts";
import { planAcls, platformAclInput } from "../plan/consul_acl.ts";
import {
  consulSecretNames,
  type ConsulSecretValues,
  deriveConsulSecrets,
  isConsulToken,
  managementTokenPath,
  newManagementToken,
  SECRET_TOKEN_PROGRAMS,
} from "../plan/consul_secrets.ts";
import { SECRET_LABEL } from "../plan/secrets.ts";
import { ALL_SERVICES } from "../plan/services.ts";
import type { CommandContext } from "../context.ts";
import { pollUntil } from "./_poll.ts";

/** The management token and every value derived from it. */
export interface ConsulSecrets extends ConsulSecretValues {
  readonly managementToken: string;
}

/** Where this stack's management token is kept on this machine. */
export function managementTokenFile(context: CommandContext): string {
  return `${context.config.root}/${managementTokenPath(context.config.stack)}`;
}

/** The stack's management token from its file, checked; undefined when there is no file. */
export async function readManagementToken(context: CommandContext): Promise<string | undefined> {
  const file = managementTokenFile(context);
  const text = await readOptionalTextFile(file);
  if (text === undefined) return undefined;
  const token = text.trim();
  if (!isConsulToken(token)) {
    throw new OpsError(`The Consul management token in "${file}" is not a lower-case UUID`, {
      code: "CONSUL_TOKEN",
    });
  }
  return token;
}

/** Every program the ACL plan gives a token (the optional services' included). */
function tokenPrograms(context: CommandContext): string[] {
  const plan = planAcls(platformAclInput(context.config.stack, { services: ALL_SERVICES }));
  return plan.tokens.map((token) => token.program);
}

/** The values derived from the stack's management token; undefined without the token file. */
export async function readConsulSecrets(
  context: CommandContext,
): Promise<ConsulSecrets | undefined> {
  const managementToken = await readManagementToken(context);
  if (managementToken === undefined) return undefined;
  const values = await deriveConsulSecrets(managementToken, tokenPrograms(context));
  return { managementToken, ...values };
}

/**
 * Makes the stack's Consul secrets when missing: the management token (its file first, then its
 * Docker secret), and the gossip key, the agents' recovery token and each program's token as
 * Docker secrets. Never prints a value. A management token secret without its file is an error:
 * the tokens Consul holds could not be derived again.
 */
export async function ensureConsulSecrets(context: CommandContext): Promise<ConsulSecrets> {
  const { config, docker, progress } = context;
  const names = consulSecretNames(config.stack);
  const file = managementTokenFile(context);
  let managementToken = await readManagementToken(context);
  if (managementToken === undefined) {
    if (await docker.secretExists(names.managementToken)) {
      throw new OpsError(
        `Stack "${config.stack}" has the Consul management token secret ` +
          `"${names.managementToken}", but its file "${file}" is missing: restore the file, ` +
          `or remove the stack's state with "destroy --volumes"`,
        { code: "CONSUL_TOKEN_MISSING" },
      );
    }
    managementToken = newManagementToken();
    progress.log(`writing the Consul management token to "${file}" (mode 0600)`);
    await writeSecretFile(file, `${managementToken}\n`);
  }
  const values = await deriveConsulSecrets(managementToken, tokenPrograms(context));
  const wanted: [string, string, string][] = [
    [names.managementToken, managementToken, "Consul's management token"],
    [names.gossipKey, values.gossipKey, "Consul's gossip encryption key"],
    [names.agentRecoveryToken, values.agentRecoveryToken, "the Consul agents' recovery token"],
    ...SECRET_TOKEN_PROGRAMS.map((program): [string, string, string] => [
      names.tokens[program],
      values.tokens[program],
      `the Consul token of "${program}"`,
    ]),
  ];
  await createMissingSecrets(context, wanted.map(([name, value, what]) => ({ name, value, what })));
  return { managementToken, ...values };
}

/** One Docker secret the stack needs: its name, its value, and what it is (for the log line). */
export interface WantedSecret {
  readonly name: string;
  readonly value: string;
  readonly what: string;
}

/**
 * Creates each secret Swarm does not hold yet, labelled with the stack so `destroy --volumes` finds
 * it. Never prints a value. Shared by every secret `deploy` makes.
 */
export async function createMissingSecrets(
  context: CommandContext,
  wanted: readonly WantedSecret[],
): Promise<void> {
  const { config, docker, progress } = context;
  const labels = { [SECRET_LABEL]: config.stack };
  for (const { name, value, what } of wanted) {
    if (await docker.secretExists(name)) continue;
    progress.log(`creating secret "${name}" (${what})`);
    await docker.createSecret(name, new TextEncoder().encode(value), labels);
  }
}

/**
 * Waits for Consul's leader, then makes Consul hold the stack's policies and tokens with the
 * secrets the stack mounts (idempotent). Until a leader has made the management token, Consul
 * refuses it: each refusal is one more wait, bounded by the command's timeout.
 */
export async function applyConsulAcls(
  context: CommandContext,
  secrets: ConsulSecrets,
): Promise<readonly string[]> {
  const { config, progress } = context;
  const changes = await pollUntil(context, {
    what: `Consul at "${config.consulUrl}" to take the stack's ACL tokens`,
    timeoutMs: config.timeoutSeconds * 1000,
    intervalMs: 1000,
    onWait: (detail) => progress.update(`waiting for Consul's ACLs: ${detail}`),
  }, async () => {
    if (!(await context.consul.ready())) return { done: false, detail: "no leader yet" };
    try {
      const outcome = await ensurePlatformAcls(config.consulUrl, secrets.managementToken, {
        stack: config.stack,
        secrets: secrets.tokens,
      });
      return { done: true, value: outcome.changes };
    } catch (error) {
      return { done: false, detail: (error as Error).message };
    }
  });
  progress.done();
  progress.log(
    changes.length === 0
      ? "Consul ACLs: policies and tokens up to date"
      : `Consul ACLs: ${changes.length} change(s): ${changes.join("; ")}`,
  );
  return changes;
}
