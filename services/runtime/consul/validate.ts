/**
 * What a value read from Consul must look like before the platform uses it. Anyone who can write
 * to Consul can put anything there, and these values end up in URLs, in `haproxy.cfg`, in HAProxy
 * runtime API commands and in connection targets: each check is strict enough that a passing value
 * cannot change the meaning of any of those.
 */

/** Consul service names the platform accepts: a letter or digit, then letters, digits, `_.-`. */
export const SERVICE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Service IDs and node names: as service names (Swarm task IDs and hostnames fit). */
export const SERVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/;

/** Whether `name` is a service name the platform accepts. */
export function isServiceName(name: unknown): name is string {
  return typeof name === "string" && SERVICE_NAME_PATTERN.test(name);
}

/** Whether `id` is a service ID (or node name) the platform accepts. */
export function isServiceId(id: unknown): id is string {
  return typeof id === "string" && SERVICE_ID_PATTERN.test(id);
}

/** Whether `port` is an integer TCP port from 1 to 65535. */
export function isPort(port: unknown): port is number {
  return typeof port === "number" && Number.isInteger(port) && port >= 1 && port <= 65535;
}

const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;

/** Whether `address` is an IPv4 or IPv6 literal (no host name, no zone, no brackets). */
export function isIpLiteral(address: unknown): address is string {
  if (typeof address !== "string") return false;
  if (IPV4.test(address)) return true;
  if (!IPV6_CHARS.test(address) || !address.includes(":")) return false;
  try {
    // The URL parser implements the full IPv6 grammar (one `::`, eight groups, embedded IPv4).
    return new URL(`http://[${address}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

/** A value for a log line: printable, quoted, cut short. */
export function printable(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  const quoted = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
  return quoted;
}
