/**
 * Thin adapter over the host's network: network namespaces, links, addresses and routes (`ip`),
 * FORWARD rules (`iptables`) and IPv4 forwarding. Every call needs root except the reads.
 */
import { OpsError } from "../errors.ts";
import {
  type LinkState,
  parseBlackhole,
  parseDefaultGateway,
  parseIpLinks,
  parseNetnsList,
  parseRoutes,
  type RouteEntry,
} from "../plan/cluster.ts";
import { lastLines, runCommand } from "./command.ts";

const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

/** Whether this process runs as root. */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

function ip(args: readonly string[], namespace?: string) {
  return runCommand("ip", namespace === undefined ? args : ["-n", namespace, ...args]);
}

/** Interfaces with their IPv4 addresses, on the host or in `namespace`. */
export async function listLinks(namespace?: string): Promise<LinkState[]> {
  const result = await ip(["-j", "addr", "show"], namespace);
  return parseIpLinks(result.stdout);
}

/** The default gateway in `namespace`, when it has one. */
export async function defaultGateway(namespace: string): Promise<string | undefined> {
  const result = await ip(["-j", "route", "show", "default"], namespace);
  return parseDefaultGateway(result.stdout);
}

/** Names of the network namespaces `ip netns` knows. */
export async function listNamespaces(): Promise<string[]> {
  const result = await runCommand("ip", ["netns", "list"]);
  return parseNetnsList(result.stdout);
}

/** Adds a network namespace. */
export async function addNamespace(name: string): Promise<void> {
  await runCommand("ip", ["netns", "add", name]);
}

/** Removes a network namespace (its links go with it). */
export async function removeNamespace(name: string): Promise<void> {
  await runCommand("ip", ["netns", "delete", name]);
}

/** Adds a veth pair: `hostLink` on the host, `eth0` inside `namespace`. */
export async function addVethPair(hostLink: string, namespace: string): Promise<void> {
  await ip(["link", "add", hostLink, "type", "veth", "peer", "name", "eth0", "netns", namespace]);
}

/**
 * Adds an interface that only holds local addresses, which no cut link can take away: a dummy, or,
 * on kernels built without the dummy driver (this test machine's), a bridge without ports, whose
 * addresses are local all the same.
 */
export async function addDummy(name: string): Promise<void> {
  const dummy = await runCommand("ip", ["link", "add", name, "type", "dummy"], { check: false });
  if (dummy.code !== 0) await ip(["link", "add", name, "type", "bridge"]);
}

/** Removes an interface (a veth pair goes as a whole). */
export async function removeLink(name: string): Promise<void> {
  await ip(["link", "delete", name]);
}

/** Gives `link` the address `cidr` (idempotent). */
export async function setAddress(link: string, cidr: string, namespace?: string): Promise<void> {
  await ip(["addr", "replace", cidr, "dev", link], namespace);
}

/** Sets `link` administratively up or down. */
export async function setLinkUp(link: string, up: boolean, namespace?: string): Promise<void> {
  await ip(["link", "set", link, up ? "up" : "down"], namespace);
}

/** Sets the default route of `namespace` (idempotent). */
export async function setDefaultRoute(namespace: string, gateway: string): Promise<void> {
  await ip(["route", "replace", "default", "via", gateway], namespace);
}

/** The host's main routing table. */
export async function listRoutes(): Promise<RouteEntry[]> {
  const result = await ip(["-j", "route", "show"]);
  return parseRoutes(result.stdout);
}

/** Routes `cidr` through `link` from the local address `source` (replacing any route for it). */
export async function setLinkRoute(cidr: string, link: string, source: string): Promise<void> {
  await ip(["route", "replace", cidr, "dev", link, "scope", "link", "src", source]);
}

/** Whether the host has a blackhole route for `cidr`. */
export async function hasBlackholeRoute(cidr: string): Promise<boolean> {
  const result = await ip(["-j", "route", "show", "exact", cidr]);
  return parseBlackhole(result.stdout, cidr);
}

/** Adds (or keeps) a blackhole route for `cidr`: what no more specific route takes is dropped. */
export async function addBlackholeRoute(cidr: string): Promise<void> {
  await ip(["route", "replace", "blackhole", cidr]);
}

/** Removes the blackhole route for `cidr`. */
export async function removeBlackholeRoute(cidr: string): Promise<void> {
  await ip(["route", "delete", "blackhole", cidr]);
}

/** Whether FORWARD holds `rule` (`iptables -C`). */
export async function hasForwardRule(rule: readonly string[]): Promise<boolean> {
  const result = await runCommand("iptables", ["-w", "5", "-C", "FORWARD", ...rule], {
    check: false,
  });
  // -C: 0 present, 1 absent; anything else (2: bad rule, 4: no permission/lock) is a failure.
  if (result.code === 0) return true;
  if (result.code === 1) return false;
  throw new OpsError(
    `Cannot read the FORWARD chain with iptables: ${
      lastLines(result.stderr, 2) || `exit ${result.code}`
    }`,
    { code: "IPTABLES_FAILED" },
  );
}

/** Inserts `rule` at the top of FORWARD. */
export async function insertForwardRule(rule: readonly string[]): Promise<void> {
  await runCommand("iptables", ["-w", "5", "-I", "FORWARD", ...rule]);
}

/** Deletes one copy of `rule` from FORWARD. */
export async function deleteForwardRule(rule: readonly string[]): Promise<void> {
  await runCommand("iptables", ["-w", "5", "-D", "FORWARD", ...rule]);
}

/** Whether the host forwards IPv4. */
export async function ipForwarding(): Promise<boolean> {
  return (await Deno.readTextFile(IP_FORWARD)).trim() === "1";
}

/** Turns IPv4 forwarding on (Docker needs it on too, so it is not turned off again). */
export async function enableIpForwarding(): Promise<void> {
  await Deno.writeTextFile(IP_FORWARD, "1\n");
}
