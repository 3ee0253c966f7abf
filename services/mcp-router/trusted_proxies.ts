/**
 * Who the client is when a proxy stands in front of the router. Behind HAProxy every connection
 * comes from HAProxy, so limits keyed by the source address would lump every client together.
 * A peer listed in `ROUTER_TRUSTED_PROXIES` (IP addresses, CIDR blocks, or host names such as
 * Swarm's `tasks.lb`, resolved by the caller) is believed about one thing: the **last** entry of
 * `X-Forwarded-For`, the one that proxy appended itself (HAProxy's `option forwardfor`). Earlier
 * entries came from the client and are ignored; a peer not listed is the client, whatever
 * headers it sends.
 */

/** A parsed `ROUTER_TRUSTED_PROXIES`. */
export interface TrustedProxyList {
  /** IP addresses and CIDR blocks. */
  readonly addresses: readonly Cidr[];
  /** Host names, resolved to addresses by the caller. */
  readonly names: readonly string[];
}

/** An address block: the address's bytes and how many leading bits must match. */
export interface Cidr {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/;

/** Parses a comma-separated list of addresses, CIDR blocks and host names; throws naming a bad entry. */
export function parseTrustedProxies(text: string): TrustedProxyList {
  const addresses: Cidr[] = [];
  const names: string[] = [];
  for (const part of text.split(",")) {
    const entry = part.trim();
    if (!entry) continue;
    const [address, bits, extra] = entry.split("/");
    const bytes = parseIp(address);
    if (bytes !== undefined) {
      const max = bytes.length * 8;
      const prefix = bits === undefined ? max : Number(bits);
      if (extra !== undefined || !/^\d+$/.test(bits ?? String(max)) || prefix > max) {
        throw new Error(`"${entry}" is not an address or CIDR block`);
      }
      addresses.push({ bytes, bits: prefix });
    } else if (bits === undefined && HOST_NAME.test(entry) && !/^[\d.]+$/.test(entry)) {
      names.push(entry.toLowerCase());
    } else {
      throw new Error(`"${entry}" is not an address, CIDR block or host name`);
    }
  }
  return { addresses, names };
}

/** Trusted proxies: the configured blocks plus what their host names resolve to now. */
export class TrustedProxies {
  readonly #list: TrustedProxyList;
  #resolved: readonly Uint8Array[] = [];

  constructor(list: TrustedProxyList) {
    this.#list = list;
  }

  /** Host names to resolve; empty when there is nothing to resolve. */
  get names(): readonly string[] {
    return this.#list.names;
  }

  /** Whether nothing is trusted: every peer is the client. */
  get empty(): boolean {
    return this.#list.addresses.length === 0 && this.#list.names.length === 0;
  }

  /** Replaces what the host names resolve to (invalid addresses are skipped). */
  setResolved(addresses: readonly string[]): void {
    this.#resolved = addresses.map(parseIp).filter((bytes) => bytes !== undefined);
  }

  /** Whether `peer` (an IP address) is a trusted proxy. */
  trusts(peer: string): boolean {
    const bytes = parseIp(peer);
    if (bytes === undefined) return false;
    for (const block of this.#list.addresses) if (contains(block, bytes)) return true;
    for (const address of this.#resolved) if (equalBytes(address, bytes)) return true;
    return false;
  }

  /**
   * The client's address: the last `X-Forwarded-For` entry when `peer` is trusted and that entry
   * is an IP address, else `peer`.
   */
  clientAddress(peer: string, forwardedFor: string | null): string {
    if (forwardedFor === null || this.empty || !this.trusts(peer)) return peer;
    const last = forwardedFor.slice(forwardedFor.lastIndexOf(",") + 1).trim();
    return parseIp(last) === undefined ? peer : last;
  }
}

/** The bytes of an IPv4 or IPv6 address (4 or 16), or `undefined`; IPv4-mapped IPv6 is IPv4. */
export function parseIp(text: string): Uint8Array | undefined {
  const address = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (address.includes(":")) {
    const bytes = parseIpv6(address);
    if (bytes === undefined) return undefined;
    const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff &&
      bytes[11] === 0xff;
    return mapped ? bytes.slice(12) : bytes;
  }
  return parseIpv4(address);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]) || Number(parts[i]) > 255) return undefined;
    bytes[i] = Number(parts[i]);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (v4 === undefined) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(part)) out.push(parseInt(part, 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

function contains(block: Cidr, bytes: Uint8Array): boolean {
  if (block.bytes.length !== bytes.length) return false;
  let bits = block.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((block.bytes[i] & mask) !== (bytes[i] & mask)) return false;
  }
  return true;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
