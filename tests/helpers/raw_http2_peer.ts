/**
 * A raw HTTP/2 server on a real TCP socket (`Deno.listen` on loopback) that tests script frame by
 * frame: it sends its SETTINGS, acknowledges the client's, records every frame the client sends,
 * and writes whatever crafted frames the test gives it, protocol errors included.
 */

/** One frame as read from the wire. */
export interface RawFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Uint8Array;
}

/** One accepted client connection. */
export interface RawConnection {
  /** Frames the client sent so far (after its preface). */
  readonly frames: readonly RawFrame[];
  /** Resolves with the first frame (already read or still to come) that matches. */
  nextFrame(match: (frame: RawFrame) => boolean, timeoutMs?: number): Promise<RawFrame>;
  /** Writes bytes; rejects once the client has closed the connection. */
  write(bytes: Uint8Array): Promise<void>;
  /** Resolves when the client closed the connection (end of stream or reset). */
  readonly closed: Promise<void>;
  /** Whether the client closed the connection. */
  readonly isClosed: boolean;
  close(): void;
}

/** A listening raw peer. */
export interface RawHttp2Peer {
  readonly port: number;
  /** Resolves with the next connection a client opens. */
  accept(): Promise<RawConnection>;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Frame type numbers (RFC 9113 section 6). */
export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Encodes one frame. */
export function rawFrame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  out[0] = payload.length >> 16;
  out[1] = (payload.length >> 8) & 0xff;
  out[2] = payload.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, streamId);
  out.set(payload, 9);
  return out;
}

/** A 4-byte big-endian payload (WINDOW_UPDATE, RST_STREAM). */
export function uint32(value: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, value);
  return payload;
}

/** A SETTINGS payload from id/value pairs. */
export function settingsPayload(settings: readonly [number, number][]): Uint8Array {
  const payload = new Uint8Array(settings.length * 6);
  const view = new DataView(payload.buffer);
  settings.forEach(([id, value], i) => {
    view.setUint16(i * 6, id);
    view.setUint32(i * 6 + 2, value);
  });
  return payload;
}

/** Starts a raw peer; `serverSettings` go in its first SETTINGS frame. */
export function startRawHttp2Peer(serverSettings: readonly [number, number][] = []): RawHttp2Peer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: RawConnection[] = [];
  const waiting: ((connection: RawConnection) => void)[] = [];
  const ready: RawConnection[] = [];
  const loops: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      const connection = serve(conn, serverSettings, loops);
      connections.push(connection);
      const waiter = waiting.shift();
      if (waiter) waiter(connection);
      else ready.push(connection);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    accept() {
      const connection = ready.shift();
      if (connection) return Promise.resolve(connection);
      return new Promise((resolve) => waiting.push(resolve));
    },
    async close() {
      listener.close();
      await accepting;
      for (const connection of connections) connection.close();
      await Promise.all(loops);
    },
  };
}

function serve(
  conn: Deno.TcpConn,
  serverSettings: readonly [number, number][],
  loops: Promise<void>[],
): RawConnection {
  conn.setNoDelay(true);
  const frames: RawFrame[] = [];
  const listeners = new Set<() => void>();
  let isClosed = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => resolveClosed = resolve);
  let writing: Promise<unknown> = Promise.resolve();
  function write(bytes: Uint8Array): Promise<void> {
    const next = writing.then(async () => {
      let offset = 0;
      while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
    });
    writing = next.catch(() => {});
    return next;
  }
  void write(rawFrame(FRAME.SETTINGS, 0, 0, settingsPayload(serverSettings))).catch(() => {});
  loops.push((async () => {
    const buffer = new Uint8Array(64 * 1024);
    let data = new Uint8Array(0);
    let prefaceSeen = false;
    for (;;) {
      const count = await conn.read(buffer).catch(() => null);
      if (count === null) break;
      const joined = new Uint8Array(data.length + count);
      joined.set(data);
      joined.set(buffer.subarray(0, count), data.length);
      data = joined;
      if (!prefaceSeen) {
        if (data.length < 24) continue;
        data = data.slice(24);
        prefaceSeen = true;
      }
      while (data.length >= 9) {
        const length = (data[0] << 16) | (data[1] << 8) | data[2];
        if (data.length < 9 + length) break;
        const frame: RawFrame = {
          type: data[3],
          flags: data[4],
          streamId: new DataView(data.buffer, data.byteOffset).getUint32(5) & 0x7fffffff,
          payload: data.slice(9, 9 + length),
        };
        data = data.slice(9 + length);
        frames.push(frame);
        if (frame.type === FRAME.SETTINGS && !(frame.flags & 1)) {
          void write(rawFrame(FRAME.SETTINGS, 1, 0)).catch(() => {});
        }
        for (const listener of [...listeners]) listener();
      }
    }
    isClosed = true;
    resolveClosed();
    for (const listener of [...listeners]) listener();
  })());
  return {
    frames,
    nextFrame(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.find(match);
          if (found) done(() => resolve(found));
          else if (isClosed) done(() => reject(new Error("connection closed before the frame")));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`no such frame within ${timeoutMs} ms`))),
          timeoutMs,
        );
        function done(settle: () => void): void {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        }
        listeners.add(check);
        check();
      });
    },
    write,
    closed,
    get isClosed() {
      return isClosed;
    },
    close() {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    },
  };
}
