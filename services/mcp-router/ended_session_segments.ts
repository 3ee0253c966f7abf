/**
 * The Consul KV layout of ended sessions, and one router's own share of it (pure: no I/O, no clock).
 *
 * Ended session IDs are grouped by when their tokens expire (a bucket of `bucketSeconds`), then by
 * the router that ended them (its writer ID), then in segments of at most
 * {@linkcode SEGMENT_CAPACITY} IDs, one ID per line:
 *
 *   platform/mcp-router/ended-sessions/<bucket end, unix s>/<writer>/<segment>-<count>
 *
 * A segment only grows, and its key names how many IDs it holds: a writer replaces `3-40` by
 * `3-52` in one transaction (delete + set). So a reader following the key names alone (a blocking
 * `?keys` query, no values) knows exactly which segments are new or grew, and fetches only those.
 * Once the bucket's end has passed, every token in it has expired and any router may delete it.
 */

/** The KV prefix of ended sessions. */
export const ENDED_SESSIONS_KV_PREFIX = "platform/mcp-router/ended-sessions/";

/** Session IDs per segment at most: 256 x 17 bytes, about 4.3 KB per value. */
export const SEGMENT_CAPACITY = 256;

/** What a session ID must look like to be stored (a `randomSessionId()` is 16 characters). */
const SID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;
const WRITER_PATTERN = /^[A-Za-z0-9_.-]{1,80}$/;
const KEY_PATTERN = /^(\d{1,12})\/([A-Za-z0-9_.-]{1,80})\/(\d{1,6})-(\d{1,4})$/;

/** One segment as named by its key. */
export interface SegmentKey {
  /** End of the expiry bucket, unix seconds: every token in the segment has expired by then. */
  readonly bucket: number;
  readonly writer: string;
  readonly segment: number;
  /** How many session IDs the value holds. */
  readonly count: number;
}

/** The bucket an expiry falls in: the next multiple of `bucketSeconds` at or after it. */
export function expiryBucket(expiresAt: number, bucketSeconds: number): number {
  return Math.ceil(expiresAt / bucketSeconds) * bucketSeconds;
}

/** The bucket width for a session lifetime: 1/24 of it (an hour for a day), at least a second. */
export function bucketSecondsFor(maxAgeSeconds: number): number {
  return Math.max(1, Math.ceil(maxAgeSeconds / 24));
}

/** The full KV key of a segment. */
export function segmentKey(key: SegmentKey): string {
  return `${ENDED_SESSIONS_KV_PREFIX}${key.bucket}/${key.writer}/${key.segment}-${key.count}`;
}

/** The identity of a segment across its versions: `<bucket>/<writer>/<segment>`. */
export function segmentId(key: Pick<SegmentKey, "bucket" | "writer" | "segment">): string {
  return `${key.bucket}/${key.writer}/${key.segment}`;
}

/**
 * The segments named in a `GET /v1/kv/<prefix>?keys` answer, the largest count of each; keys of
 * any other shape are ignored (Consul's answer is input like any other).
 */
export function parseSegmentKeys(body: unknown): Map<string, SegmentKey> {
  if (!Array.isArray(body)) throw new TypeError("Consul KV keys answer is not an array");
  const segments = new Map<string, SegmentKey>();
  for (const key of body) {
    if (typeof key !== "string" || !key.startsWith(ENDED_SESSIONS_KV_PREFIX)) continue;
    const match = KEY_PATTERN.exec(key.slice(ENDED_SESSIONS_KV_PREFIX.length));
    if (!match) continue;
    const parsed: SegmentKey = {
      bucket: Number(match[1]),
      writer: match[2],
      segment: Number(match[3]),
      count: Number(match[4]),
    };
    if (parsed.count < 1 || parsed.count > SEGMENT_CAPACITY) continue;
    const id = segmentId(parsed);
    if ((segments.get(id)?.count ?? 0) < parsed.count) segments.set(id, parsed);
  }
  return segments;
}

/** The value of a segment. */
export function encodeSegment(sids: readonly string[]): string {
  return sids.join("\n");
}

/** The session IDs of a segment's value: well-formed lines only, at most `SEGMENT_CAPACITY`. */
export function parseSegment(text: string): string[] {
  const sids: string[] = [];
  for (const line of text.split("\n", SEGMENT_CAPACITY)) {
    if (SID_PATTERN.test(line)) sids.push(line);
  }
  return sids;
}

/** Whether `writer` can name a writer in a key. */
export function isWriterId(writer: string): boolean {
  return WRITER_PATTERN.test(writer);
}

/** One operation of a Consul transaction (`PUT /v1/txn`), value still as text. */
export type KvOperation =
  | { readonly verb: "set"; readonly key: string; readonly value: string }
  | { readonly verb: "delete"; readonly key: string };

/** A flush: the transaction to send, and what to record once Consul applied it. */
export interface FlushPlan {
  readonly operations: readonly KvOperation[];
  /** Marks the planned segments as written; call only after Consul applied the transaction. */
  commit(): void;
}

interface OwnSegment {
  readonly bucket: number;
  readonly segment: number;
  readonly sids: string[];
  /** How many of `sids` Consul holds (the count in the key written last; 0: none). */
  written: number;
}

/** Why {@linkcode EndedSessionLedger.add} refused. */
export type LedgerRefusal = "full";

/**
 * The session IDs one router ended and has not yet seen expire: at most `capacity`, assigned to
 * segments at once, written to Consul in batches by {@linkcode EndedSessionLedger.planFlush}.
 */
export class EndedSessionLedger {
  readonly #writer: string;
  readonly #capacity: number;
  readonly #bucketSeconds: number;
  /** By segment ID; a bucket's last segment is the one that grows. */
  readonly #segments = new Map<string, OwnSegment>();
  readonly #lastSegment = new Map<number, number>();
  readonly #sids = new Set<string>();

  constructor(writer: string, options: { capacity: number; bucketSeconds: number }) {
    if (!isWriterId(writer)) throw new RangeError(`Invalid ended-sessions writer ID "${writer}"`);
    this.#writer = writer;
    this.#capacity = options.capacity;
    this.#bucketSeconds = options.bucketSeconds;
  }

  /** Session IDs held (ended here, not yet expired). */
  get size(): number {
    return this.#sids.size;
  }

  /** Whether `sid` was ended here and is still held. */
  has(sid: string): boolean {
    return this.#sids.has(sid);
  }

  /** Session IDs not yet in Consul. */
  get unwritten(): number {
    let count = 0;
    for (const own of this.#segments.values()) count += own.sids.length - own.written;
    return count;
  }

  /** The earliest bucket end held, unix seconds; `undefined` when empty. */
  get earliestBucket(): number | undefined {
    let earliest: number | undefined;
    for (const own of this.#segments.values()) {
      if (earliest === undefined || own.bucket < earliest) earliest = own.bucket;
    }
    return earliest;
  }

  /** Adds an ended session whose token expires at `expiresAt`; refuses when full. */
  add(sid: string, expiresAt: number): LedgerRefusal | undefined {
    if (!SID_PATTERN.test(sid)) throw new RangeError(`Invalid session ID "${sid}"`);
    if (this.#sids.has(sid)) return undefined;
    if (this.#sids.size >= this.#capacity) return "full";
    const bucket = expiryBucket(expiresAt, this.#bucketSeconds);
    let index = this.#lastSegment.get(bucket) ?? 0;
    let own = this.#segments.get(segmentId({ bucket, writer: this.#writer, segment: index }));
    if (own !== undefined && own.sids.length >= SEGMENT_CAPACITY) {
      index++;
      own = undefined;
    }
    if (own === undefined) {
      own = { bucket, segment: index, sids: [], written: 0 };
      this.#segments.set(segmentId({ bucket, writer: this.#writer, segment: index }), own);
      this.#lastSegment.set(bucket, index);
    }
    own.sids.push(sid);
    this.#sids.add(sid);
    return undefined;
  }

  /**
   * The transaction that brings Consul up to date, at most `maxOperations` long (Consul takes 64
   * per transaction); `undefined` when nothing is unwritten. Segments left out go in a later one.
   */
  planFlush(maxOperations: number): FlushPlan | undefined {
    const operations: KvOperation[] = [];
    const planned: { own: OwnSegment; count: number }[] = [];
    for (const own of this.#segments.values()) {
      if (own.written === own.sids.length) continue;
      const needed = own.written > 0 ? 2 : 1;
      if (operations.length + needed > maxOperations) break;
      const count = own.sids.length;
      const key = { bucket: own.bucket, writer: this.#writer, segment: own.segment };
      operations.push({
        verb: "set",
        key: segmentKey({ ...key, count }),
        value: encodeSegment(own.sids),
      });
      if (own.written > 0) {
        operations.push({ verb: "delete", key: segmentKey({ ...key, count: own.written }) });
      }
      planned.push({ own, count });
    }
    if (planned.length === 0) return undefined;
    return {
      operations,
      commit: () => {
        for (const { own, count } of planned) own.written = Math.max(own.written, count);
      },
    };
  }

  /** Forgets the buckets that ended before `nowSeconds`; returns how many IDs went. */
  expire(nowSeconds: number): number {
    let forgotten = 0;
    for (const [id, own] of this.#segments) {
      if (own.bucket >= nowSeconds) continue;
      this.#segments.delete(id);
      this.#lastSegment.delete(own.bucket);
      for (const sid of own.sids) this.#sids.delete(sid);
      forgotten += own.sids.length;
    }
    return forgotten;
  }
}
