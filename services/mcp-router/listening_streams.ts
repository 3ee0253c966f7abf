/**
 * The router's long-lived answers: 2025 GET streams and 2026-07-28 `subscriptions/listen` streams.
 * Each holds a connection (about 110 KiB with the guard; 3,000 on one session once took a router
 * from 102 to 319 MiB), so they are capped per session and in total, and closed when idle (no message
 * for `streamIdleMs`; heartbeat comments do not count) or old (`streamMaxAgeMs`). A closed stream
 * is not an error for the client: MCP clients open a new one, which also moves them off a router
 * that is going away.
 */
import type { Refusal } from "./client_limits.ts";

/** What {@linkcode ListeningStreams} enforces. */
export interface StreamLimitSettings {
  maxStreams: number;
  maxStreamsPerSession: number;
  streamIdleMs: number;
  streamMaxAgeMs: number;
}

/** A stream's place, reserved before its answer is built. */
export interface StreamSlot {
  /** Wraps the answer's body: the slot is freed when the stream ends, however it ends. */
  wrap(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array>;
  /** Frees the slot of a stream that was not opened after all; later calls do nothing. */
  release(): void;
}

interface OpenStream {
  readonly session: string | undefined;
  readonly openedAt: number;
  lastMessageAt: number;
  /** Ends the stream for the client and frees the slot. */
  end(): void;
}

const COLON = 0x3a;

/** Open listening streams on this router, bounded and expired. */
export class ListeningStreams {
  readonly #settings: StreamLimitSettings;
  readonly #now: () => number;
  readonly #open = new Set<OpenStream>();
  readonly #reserved = new Map<string | undefined, number>();
  #reservedTotal = 0;
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(settings: StreamLimitSettings, now: () => number = Date.now) {
    this.#settings = settings;
    this.#now = now;
  }

  /** The most streams this router holds. */
  get max(): number {
    return this.#settings.maxStreams;
  }

  /** Streams open or reserved now. */
  get size(): number {
    return this.#reservedTotal;
  }

  /** Reserves a stream of `session` (undefined: a sessionless listen stream), or refuses. */
  reserve(session: string | undefined, onEnd: () => void): StreamSlot | Refusal {
    const { maxStreams, maxStreamsPerSession } = this.#settings;
    if (this.#reservedTotal >= maxStreams) {
      return {
        status: 503,
        reason: "router_streams",
        retryAfterSeconds: 5,
        message: `The router holds its maximum of ${maxStreams} listening streams`,
      };
    }
    const ofSession = this.#reserved.get(session) ?? 0;
    if (session !== undefined && ofSession >= maxStreamsPerSession) {
      return {
        status: 429,
        reason: "session_streams",
        retryAfterSeconds: 5,
        message: `Too many listening streams: at most ${maxStreamsPerSession} per session`,
      };
    }
    this.#reserved.set(session, ofSession + 1);
    this.#reservedTotal++;
    let freed = false;
    const free = () => {
      if (freed) return;
      freed = true;
      const left = (this.#reserved.get(session) ?? 1) - 1;
      if (left > 0) this.#reserved.set(session, left);
      else this.#reserved.delete(session);
      this.#reservedTotal--;
      onEnd();
    };
    return {
      release: free,
      wrap: (body) => this.#wrap(body, session, free),
    };
  }

  /** Closes streams idle or older than allowed at `nowMs`; returns how many. */
  sweep(nowMs: number = this.#now()): number {
    const { streamIdleMs, streamMaxAgeMs } = this.#settings;
    let closed = 0;
    for (const stream of [...this.#open]) {
      if (
        nowMs - stream.lastMessageAt >= streamIdleMs || nowMs - stream.openedAt >= streamMaxAgeMs
      ) {
        stream.end();
        closed++;
      }
    }
    return closed;
  }

  /** Ends every stream (shutdown). */
  closeAll(): void {
    for (const stream of [...this.#open]) stream.end();
    this.#stopSweeper();
  }

  #wrap(
    body: ReadableStream<Uint8Array>,
    session: string | undefined,
    free: () => void,
  ): ReadableStream<Uint8Array> {
    const reader = body.getReader();
    const now = this.#now();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.#open.delete(stream);
      if (this.#open.size === 0) this.#stopSweeper();
      free();
    };
    const stream: OpenStream = {
      session,
      openedAt: now,
      lastMessageAt: now,
      end: () => {
        if (done) return;
        try {
          controller.close();
        } catch {
          // Already closed or errored by the client going away.
        }
        reader.cancel().catch(() => {});
        finish();
      },
    };
    this.#open.add(stream);
    this.#startSweeper();
    return new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      pull: async (c) => {
        try {
          const { done: ended, value } = await reader.read();
          if (done) return;
          if (ended) {
            c.close();
            finish();
            return;
          }
          // SSE comment lines (`: keepalive`) keep proxies awake but are not messages.
          if (value.byteLength > 0 && value[0] !== COLON) stream.lastMessageAt = this.#now();
          c.enqueue(value);
        } catch (error) {
          if (!done) c.error(error);
          finish();
        }
      },
      cancel(reason) {
        reader.cancel(reason).catch(() => {});
        finish();
      },
    }, { highWaterMark: 0 });
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const { streamIdleMs, streamMaxAgeMs } = this.#settings;
    const period = Math.min(5000, Math.max(50, Math.min(streamIdleMs, streamMaxAgeMs) / 4));
    this.#sweeper = setInterval(() => this.sweep(), period);
  }

  #stopSweeper(): void {
    if (this.#sweeper === undefined) return;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

/**
 * Passes `body` through and calls `onEnd` once when it ends, errors or is cancelled: what an
 * answer streamed after its headers (a call with progress) holds until then.
 */
export function whenBodyEnds(
  body: ReadableStream<Uint8Array>,
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          end();
        } else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
        end();
      }
    },
    cancel(reason) {
      reader.cancel(reason).catch(() => {});
      end();
    },
  }, { highWaterMark: 0 });
}
