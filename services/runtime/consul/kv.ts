/** Consul KV through the shared client: keys as paths of URL-encoded segments, values decoded. */
import type { ConsulClient, ConsulRequestOptions } from "./client.ts";

/** The API path of a KV key (or prefix): each `/`-separated segment URL-encoded. */
export function kvPath(key: string): string {
  return `/v1/kv/${key.split("/").map((segment) => encodeURIComponent(segment)).join("/")}`;
}

/** Options of {@linkcode putKv}. */
export interface PutKvOptions extends Pick<ConsulRequestOptions, "signal" | "timeoutMs"> {
  /** The value to write. */
  value: string;
}

/** Writes `options.value` at `key`. */
export async function putKv(
  consul: ConsulClient,
  key: string,
  options: PutKvOptions,
): Promise<void> {
  const { value, ...request } = options;
  await consul.put(kvPath(key), { ...request, body: value });
}

/** Deletes `key` (a missing key is no error, as in Consul). */
export async function deleteKv(
  consul: ConsulClient,
  key: string,
  options: Pick<ConsulRequestOptions, "signal" | "timeoutMs"> = {},
): Promise<void> {
  await consul.delete(kvPath(key), options);
}

/** The value of `key` as text, or `undefined` when the key does not exist. */
export async function getKv(
  consul: ConsulClient,
  key: string,
  options: Pick<ConsulRequestOptions, "signal" | "timeoutMs"> = {},
): Promise<string | undefined> {
  const body = await consul.getOrUndefined(kvPath(key), options);
  if (body === undefined) return undefined;
  const entry = Array.isArray(body) ? body[0] : undefined;
  return typeof entry?.Value === "string" ? decodeKvValue(entry.Value) : "";
}

/** A KV value as Consul sends it (base64) turned into text; invalid base64 gives `""`. */
export function decodeKvValue(value: string): string {
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(value), (char) => char.charCodeAt(0)));
  } catch {
    return "";
  }
}
