/** The stack's Swarm secrets: their names, and the checks a value must pass before it is stored. */
import { contentHash } from "./build.ts";

/** Label put on every secret the ops tool creates, so `destroy --volumes` finds them. */
export const SECRET_LABEL = "agent-platform.stack";

/** The routers' session key: one per stack, kept across deploys so sessions survive them. */
export function sessionKeySecretName(stack: string): string {
  return `${stack}_router-session-key`;
}

/**
 * HAProxy's stats credentials. Swarm secrets cannot change, so the name carries a hash of the
 * value: new credentials are a new secret, and the `lb` service rolls over to it.
 */
export function statsAuthSecretName(stack: string, credentials: string): string {
  return `${stack}_lb-stats-auth-${contentHash([{ label: "auth", content: credentials }])}`;
}

/** Checks `user:password` on one line; returns it trimmed, or throws naming the file. */
export function parseStatsCredentials(text: string, file: string): string {
  const value = text.trim();
  const colon = value.indexOf(":");
  if (colon < 1 || colon === value.length - 1 || /[\r\n]/.test(value)) {
    throw new Error(`Invalid stats credentials in "${file}": expected one line "user:password"`);
  }
  return value;
}
