/** Reads `weight <service> <instance> <n>` and finds the instance it names. */
import {
  MAX_INSTANCE_WEIGHT,
  parseInstanceWeight,
} from "../../services/runtime/instance_weight.ts";
import { UsageError } from "../errors.ts";
import type { ConsulInstance } from "./state.ts";

/** A weight to set: a number, or `default` (Consul's default weights: the key is removed). */
export type WeightRequest = number | "default";

/** Parses the weight argument: an integer from 1 to 256, or `default`. */
export function parseWeightArg(text: string): WeightRequest {
  if (text.trim() === "default") return "default";
  const weight = parseInstanceWeight(text);
  if (weight === undefined) {
    throw new UsageError(
      `Invalid weight "${text}": expected an integer from 1 to ${MAX_INSTANCE_WEIGHT}, or "default"`,
    );
  }
  return weight;
}

/**
 * The instance `name` designates among a service's registrations: its full ID, or the end of one
 * (a task ID). A name that fits none or several is a usage error listing the IDs.
 */
export function findInstance(
  instances: readonly ConsulInstance[],
  service: string,
  name: string,
): ConsulInstance {
  const own = instances.filter((instance) => instance.service === service);
  const exact = own.find((instance) => instance.id === name);
  if (exact) return exact;
  const matches = name === "" ? [] : own.filter((instance) => instance.id.endsWith(name));
  if (matches.length === 1) return matches[0];
  const ids = own.map((instance) => instance.id).join(", ") || "none";
  throw new UsageError(
    matches.length === 0
      ? `No instance "${name}" of "${service}" in Consul; its instances: ${ids}`
      : `"${name}" names several instances of "${service}": ${
        matches.map((instance) => instance.id).join(", ")
      }`,
  );
}
