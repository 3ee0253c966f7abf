/**
 * Session IDs of 2025-era MCP sessions: an AES-256-GCM sealed token carrying what any router
 * replica needs to serve the session, so no shared session store is needed.
 *
 * Layout (base64url): `version(1) | key id(4) | iv(12) | ciphertext+tag`. The key id lets a router
 * pick the current or the previous key without trial decryption; keys are imported once, so a
 * request costs at most one AES-GCM operation and no key derivation. Tokens opened recently are kept
 * in a bounded cache, so a session's later requests cost a map lookup and the expiry check.
 */

/** What a session token carries. */
export interface SessionClaims {
  /** Random session identity, stable for the session's lifetime (logs, cancellation). */
  readonly sid: string;
  /** The protocol version negotiated at initialize. */
  readonly protocolVersion: string;
  /** The client's name and version from initialize. */
  readonly client: { readonly name: string; readonly version: string };
  /** Issue time, seconds since the epoch. */
  readonly issuedAt: number;
}

/** Options of {@linkcode SessionCodec.create}. */
export interface SessionCodecOptions {
  /** Keys still accepted when opening tokens (rotation); never used to seal. */
  previousKeys?: Uint8Array[];
  /** Tokens older than this are refused; default one day. */
  maxAgeSeconds?: number;
  /** The clock; defaults to `Date.now`. */
  now?: () => number;
  /** Opened tokens remembered, least recently used dropped first; default 10 000, 0 disables. */
  cacheSize?: number;
}

const TOKEN_VERSION = 1;
const KEY_ID_LENGTH = 4;
const IV_LENGTH = 12;
const HEADER_LENGTH = 1 + KEY_ID_LENGTH + IV_LENGTH;
const TAG_LENGTH = 16;
const MAX_TOKEN_CHARS = 4096;
const ADDITIONAL_DATA = new TextEncoder().encode("mcp-router session v1");
const DEFAULT_MAX_AGE_SECONDS = 24 * 60 * 60;
const DEFAULT_CACHE_SIZE = 10_000;

interface ImportedKey {
  id: Uint8Array;
  key: CryptoKey;
}

/** Seals and opens session tokens with a current key and optional previous keys. */
export class SessionCodec {
  readonly #current: ImportedKey;
  readonly #byId: Map<string, CryptoKey>;
  readonly #maxAgeSeconds: number;
  readonly #now: () => number;
  readonly #cacheSize: number;
  /** Token text to its claims; only tokens that opened are kept, so a forged one never is. */
  readonly #opened = new Map<string, SessionClaims>();

  private constructor(current: ImportedKey, all: ImportedKey[], options: SessionCodecOptions) {
    this.#current = current;
    this.#byId = new Map(all.map((entry) => [hex(entry.id), entry.key]));
    this.#maxAgeSeconds = options.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS;
    this.#now = options.now ?? Date.now;
    this.#cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
  }

  /** Imports `key` (32 bytes) and the previous keys once. */
  static async create(key: Uint8Array, options: SessionCodecOptions = {}): Promise<SessionCodec> {
    const current = await importKey(key);
    const previous = await Promise.all((options.previousKeys ?? []).map(importKey));
    return new SessionCodec(current, [current, ...previous], options);
  }

  /** Seals `claims` into a token with the current key. */
  async seal(claims: SessionClaims): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(IV_LENGTH));
    const plaintext = new TextEncoder().encode(JSON.stringify(claims));
    const ciphertext = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: ADDITIONAL_DATA },
        this.#current.key,
        plaintext,
      ),
    );
    const token = new Uint8Array(HEADER_LENGTH + ciphertext.length);
    token[0] = TOKEN_VERSION;
    token.set(this.#current.id, 1);
    token.set(iv, 1 + KEY_ID_LENGTH);
    token.set(ciphertext, HEADER_LENGTH);
    return encodeBase64Url(token);
  }

  /** Opens a token; `undefined` when it is malformed, forged, sealed with an unknown key or expired. */
  async open(token: string): Promise<SessionClaims | undefined> {
    const cached = this.#opened.get(token);
    if (cached !== undefined) {
      if (!this.#fresh(cached)) {
        this.#opened.delete(token);
        return undefined;
      }
      // Re-inserting moves the entry to the young end of the map's order.
      this.#opened.delete(token);
      this.#opened.set(token, cached);
      return cached;
    }
    const claims = await this.#decrypt(token);
    if (claims === undefined || !this.#fresh(claims)) return undefined;
    if (this.#cacheSize > 0) {
      if (this.#opened.size >= this.#cacheSize) {
        this.#opened.delete(this.#opened.keys().next().value!);
      }
      this.#opened.set(token, claims);
    }
    return claims;
  }

  #fresh(claims: SessionClaims): boolean {
    const ageSeconds = this.#now() / 1000 - claims.issuedAt;
    return ageSeconds <= this.#maxAgeSeconds && ageSeconds >= -60;
  }

  async #decrypt(token: string): Promise<SessionClaims | undefined> {
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) return undefined;
    const bytes = decodeBase64Url(token);
    if (bytes === undefined || bytes.length < HEADER_LENGTH + TAG_LENGTH) return undefined;
    if (bytes[0] !== TOKEN_VERSION) return undefined;
    const key = this.#byId.get(hex(bytes.subarray(1, 1 + KEY_ID_LENGTH)));
    if (key === undefined) return undefined;
    let plaintext: ArrayBuffer;
    try {
      plaintext = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: bytes.subarray(1 + KEY_ID_LENGTH, HEADER_LENGTH),
          additionalData: ADDITIONAL_DATA,
        },
        key,
        bytes.subarray(HEADER_LENGTH),
      );
    } catch {
      return undefined;
    }
    return parseClaims(new TextDecoder().decode(plaintext));
  }
}

/** Decodes a session key given as base64 of exactly 32 bytes, throwing a `RangeError` otherwise. */
export function parseSessionKey(text: string, name: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(text.trim()), (char) => char.charCodeAt(0));
  } catch {
    throw new RangeError(`Invalid ${name}: not base64`);
  }
  if (bytes.length !== 32) {
    throw new RangeError(`Invalid ${name}: expected 32 bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** A fresh random 32-byte key, for a router started without one. */
export function randomSessionKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** A fresh random session identity. */
export function randomSessionId(): string {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(12)));
}

async function importKey(given: Uint8Array): Promise<ImportedKey> {
  const raw = new Uint8Array(given);
  if (raw.length !== 32) throw new RangeError(`Invalid session key: expected 32 bytes`);
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  // The key id is a hash prefix: it names the key without revealing it.
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  return { id: digest.slice(0, KEY_ID_LENGTH), key };
}

function parseClaims(text: string): SessionClaims | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const client = record.client as Record<string, unknown> | undefined;
  if (
    typeof record.sid !== "string" || typeof record.protocolVersion !== "string" ||
    typeof record.issuedAt !== "number" || typeof client !== "object" || client === null ||
    typeof client.name !== "string" || typeof client.version !== "string"
  ) {
    return undefined;
  }
  return {
    sid: record.sid,
    protocolVersion: record.protocolVersion,
    client: { name: client.name, version: client.version },
    issuedAt: record.issuedAt,
  };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Base64url without padding (RFC 4648 section 5). */
export function encodeBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}
