/** Consul's gossip encryption key (`consul agent -encrypt`): 32 random bytes, base64. */

/** Bytes of a gossip key (AES-256, as `consul keygen` makes since 1.x). */
export const GOSSIP_KEY_BYTES = 32;

/** A new gossip key from `randomBytes` (default: the platform's CSPRNG). */
export function gossipKey(
  randomBytes: (length: number) => Uint8Array = (length) =>
    crypto.getRandomValues(new Uint8Array(length)),
): string {
  const bytes = randomBytes(GOSSIP_KEY_BYTES);
  if (bytes.length !== GOSSIP_KEY_BYTES) {
    throw new RangeError(`A gossip key takes ${GOSSIP_KEY_BYTES} bytes, got ${bytes.length}`);
  }
  return btoa(String.fromCharCode(...bytes));
}

/** Whether `key` is a gossip key Consul accepts (base64 of 16, 24 or 32 bytes). */
export function isGossipKey(key: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) return false;
  try {
    return [16, 24, 32].includes(atob(key).length);
  } catch {
    return false;
  }
}
