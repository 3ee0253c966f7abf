/**
 * Instance weights set by an operator (`./platform weight <service> <instance> <n>`): a Consul KV
 * key per instance, `platform/weights/<Consul service>/<instance ID>`, holding an integer. Each
 * instance follows its own key (a blocking query) and registers again with Consul `Weights`
 * `{ Passing: n, Warning: 1 }`; without a key it registers Consul's default weights. The routers'
 * `weighted` strategy and HAProxy read those `Weights`, so both follow.
 *
 * Why KV and not re-registering the instance from the ops tool: a registration belongs to the
 * agent of the instance's node, which the ops tool cannot reach on a multi-node Swarm, and the
 * instance registers itself again (Consul restarted, agent replaced) with its own definition,
 * which would drop a weight set from outside. A key survives both, and the instance stays the one
 * writer of its registration.
 */

/** The KV prefix of every instance weight. */
export const WEIGHTS_KV_PREFIX = "platform/weights/";

/** Largest weight: HAProxy's (a Consul weight above it would be clamped there). */
export const MAX_INSTANCE_WEIGHT = 256;

/** The key of one instance's weight. */
export function instanceWeightKey(service: string, instanceId: string): string {
  return `${WEIGHTS_KV_PREFIX}${service}/${instanceId}`;
}

/** A weight as text: an integer from 1 to {@linkcode MAX_INSTANCE_WEIGHT}, else `undefined`. */
export function parseInstanceWeight(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,3}$/.test(trimmed)) return undefined;
  const weight = Number(trimmed);
  return weight >= 1 && weight <= MAX_INSTANCE_WEIGHT ? weight : undefined;
}
