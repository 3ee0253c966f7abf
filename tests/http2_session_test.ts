/**
 * The HTTP/2 client against a raw peer on a real TCP socket that sends crafted frames: every
 * connection error RFC 9113 names closes the connection, stream errors reset only their stream,
 * and the header list is capped (advertised, and enforced on size and CONTINUATION count).
 */
import assert from "node:assert/strict";
import type { HeaderField } from "../services/runtime/hpack.ts";
import {
  Http2Session,
  MAX_CONTINUATION_FRAMES,
  MAX_HEADER_LIST_SIZE,
  type StreamHandler,
} from "../services/runtime/http2_session.ts";
import {
  FRAME,
  type RawConnection,
  rawFrame,
  settingsPayload,
  startRawHttp2Peer,
  uint32,
} from "./helpers/raw_http2_peer.ts";

interface Events {
  lost: string[];
  resets: number[];
  headers: HeaderField[][];
  /** Resolves at the first header block. */
  firstHeaders: Promise<void>;
}

function recorder(): { handler: StreamHandler; events: Events } {
  let headersSeen!: () => void;
  const events: Events = {
    lost: [],
    resets: [],
    headers: [],
    firstHeaders: new Promise((resolve) => headersSeen = resolve),
  };
  return {
    events,
    handler: {
      onHeaders: (fields) => {
        events.headers.push(fields);
        headersSeen();
      },
      onData: () => {},
      onReset: (code) => void events.resets.push(code),
      onLost: (_loss, reason) => void events.lost.push(reason),
    },
  };
}

const REQUEST = {
  headers: [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/test"],
    [":authority", "peer"],
  ] as HeaderField[],
  body: new Uint8Array([0, 0, 0, 0, 0]),
};

/** A session to a fresh raw peer with stream 1 open; closes both at the end. */
async function withSession(
  body: (
    peer: RawConnection,
    session: Http2Session,
    stream: Events,
    closedReason: Promise<string>,
  ) => Promise<void>,
): Promise<void> {
  const server = startRawHttp2Peer();
  let closeReason!: (reason: string) => void;
  const closedReason = new Promise<string>((resolve) => closeReason = resolve);
  const { handler, events } = recorder();
  const connecting = Http2Session.connect("127.0.0.1", server.port, {
    timeoutMs: 5_000,
    onClose: () => closeReason(events.lost[0] ?? "closed"),
  });
  const peer = await server.accept();
  const session = await connecting;
  try {
    session.request(REQUEST, handler);
    await peer.nextFrame((frame) => frame.type === FRAME.HEADERS && frame.streamId === 1);
    await body(peer, session, events, closedReason);
  } finally {
    session.closeWhenIdle();
    await server.close();
  }
}

/** HPACK integer with an `n`-bit prefix and the given first-byte flags. */
function hpackInteger(value: number, prefixBits: number, flags: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [flags | value];
  const out = [flags | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

Deno.test("Http2Session advertises SETTINGS_MAX_HEADER_LIST_SIZE", async () => {
  await withSession(async (peer) => {
    const settings = await peer.nextFrame((frame) =>
      frame.type === FRAME.SETTINGS && (frame.flags & 1) === 0
    );
    const view = new DataView(settings.payload.buffer, settings.payload.byteOffset);
    const values = new Map<number, number>();
    for (let offset = 0; offset < settings.payload.length; offset += 6) {
      values.set(view.getUint16(offset), view.getUint32(offset + 2));
    }
    assert.equal(values.get(0x6), MAX_HEADER_LIST_SIZE);
    assert.equal(values.get(0x2), 0);
  });
});

Deno.test("Http2Session closes the connection on each connection error of RFC 9113", async (t) => {
  const cases: [string, Uint8Array[], RegExp][] = [
    [
      "WINDOW_UPDATE of 0 on the connection",
      [rawFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32(0))],
      /of 0/,
    ],
    [
      "WINDOW_UPDATE that takes the connection window past 2^31-1",
      [rawFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32(2 ** 31 - 1))],
      /2\^31-1/,
    ],
    ["SETTINGS on a stream", [rawFrame(FRAME.SETTINGS, 0, 1)], /SETTINGS frame on stream 1/],
    ["SETTINGS ACK with a payload", [rawFrame(FRAME.SETTINGS, 1, 0, new Uint8Array(6))], /ACK/],
    [
      "SETTINGS_ENABLE_PUSH from a server",
      [rawFrame(FRAME.SETTINGS, 0, 0, settingsPayload([[0x2, 1]]))],
      /ENABLE_PUSH/,
    ],
    [
      "SETTINGS_INITIAL_WINDOW_SIZE past 2^31-1",
      [rawFrame(FRAME.SETTINGS, 0, 0, settingsPayload([[0x4, 2 ** 31]]))],
      /too large/,
    ],
    ["PING on a stream", [rawFrame(FRAME.PING, 0, 1, new Uint8Array(8))], /PING frame on stream/],
    ["GOAWAY on a stream", [rawFrame(FRAME.GOAWAY, 0, 1, new Uint8Array(8))], /GOAWAY frame/],
    ["DATA on stream 0", [rawFrame(FRAME.DATA, 0, 0, new Uint8Array(1))], /DATA frame on stream 0/],
    ["HEADERS on stream 0", [rawFrame(FRAME.HEADERS, 4, 0, new Uint8Array([0x88]))], /stream 0/],
    ["RST_STREAM on stream 0", [rawFrame(FRAME.RST_STREAM, 0, 0, uint32(8))], /stream 0/],
    ["PRIORITY on stream 0", [rawFrame(FRAME.PRIORITY, 0, 0, new Uint8Array(5))], /stream 0/],
    ["CONTINUATION on stream 0", [rawFrame(FRAME.CONTINUATION, 4, 0)], /stream 0/],
    ["HEADERS on an idle stream", [rawFrame(FRAME.HEADERS, 5, 3, new Uint8Array([0x88]))], /idle/],
    ["HEADERS on a server-initiated stream", [
      rawFrame(FRAME.HEADERS, 5, 2, new Uint8Array([0x88])),
    ], /idle/],
    ["WINDOW_UPDATE on an idle stream", [rawFrame(FRAME.WINDOW_UPDATE, 0, 7, uint32(1))], /idle/],
    [
      "PUSH_PROMISE although push is off",
      [rawFrame(FRAME.PUSH_PROMISE, 4, 1, new Uint8Array(4))],
      /PUSH_PROMISE/,
    ],
    [
      "a frame between HEADERS and its CONTINUATION",
      [
        rawFrame(FRAME.HEADERS, 0, 1, new Uint8Array([0x88])),
        rawFrame(FRAME.PING, 0, 0, new Uint8Array(8)),
      ],
      /Expected CONTINUATION/,
    ],
    [
      "CONTINUATION without HEADERS",
      [rawFrame(FRAME.CONTINUATION, 4, 1, new Uint8Array([0x88]))],
      /Unexpected/,
    ],
  ];
  for (const [name, frames, reason] of cases) {
    await t.step(name, async () => {
      await withSession(async (peer, session, events, closedReason) => {
        for (const frame of frames) {
          if (peer.isClosed) break;
          await peer.write(frame).catch(() => {});
        }
        assert.match(await closedReason, /protocol error/);
        assert.match(events.lost[0] ?? "", reason);
        await peer.closed;
        assert.equal(session.available, false);
      });
    });
  }
});

Deno.test("Http2Session resets only the stream on a stream error", async (t) => {
  const cases: [string, Uint8Array, number][] = [
    ["WINDOW_UPDATE of 0 on a stream", rawFrame(FRAME.WINDOW_UPDATE, 0, 1, uint32(0)), 0x1],
    [
      "WINDOW_UPDATE that takes a stream window past 2^31-1",
      rawFrame(FRAME.WINDOW_UPDATE, 0, 1, uint32(2 ** 31 - 1)),
      0x3,
    ],
  ];
  for (const [name, frame, code] of cases) {
    await t.step(name, async () => {
      await withSession(async (peer, session, events) => {
        await peer.write(frame);
        const reset = await peer.nextFrame((f) => f.type === FRAME.RST_STREAM && f.streamId === 1);
        assert.equal(new DataView(reset.payload.buffer).getUint32(0), code);
        assert.deepEqual(events.resets, [code]);
        assert.equal(session.available, true);
        assert.equal(peer.isClosed, false);
      });
    });
  }
});

Deno.test("Http2Session caps the header list a peer may send", async (t) => {
  await t.step("endless CONTINUATION frames close the connection", async () => {
    await withSession(async (peer, _session, events, closedReason) => {
      await peer.write(rawFrame(FRAME.HEADERS, 0, 1, new Uint8Array([0x88])));
      let sent = 0;
      // Bounded: far more than the cap, stopped as soon as the client has closed.
      for (; sent < 10_000 && !peer.isClosed; sent++) {
        const ok = await peer.write(rawFrame(FRAME.CONTINUATION, 0, 1, new Uint8Array([0x88])))
          .then(() => true, () => false);
        if (!ok) break;
      }
      assert.match(await closedReason, /protocol error/);
      assert.match(events.lost[0], new RegExp(`more than ${MAX_CONTINUATION_FRAMES} CONTINUATION`));
      await peer.closed;
      assert.ok(sent < 10_000, `the peer could send ${sent} frames`);
    });
  });
  await t.step("a header block over the limit closes the connection", async () => {
    await withSession(async (peer, _session, events, closedReason) => {
      const chunk = new Uint8Array(16_384);
      await peer.write(rawFrame(FRAME.HEADERS, 0, 1, chunk));
      for (let i = 0; i < 4 && !peer.isClosed; i++) {
        await peer.write(rawFrame(FRAME.CONTINUATION, 0, 1, chunk)).catch(() => {});
      }
      assert.match(await closedReason, /protocol error/);
      assert.match(events.lost[0], /Header block larger than/);
    });
  });
  await t.step("a small block that decodes past the limit closes the connection", async () => {
    await withSession(async (peer, _session, events, closedReason) => {
      // One 4000-byte literal added to the table, then 100 references to it: 4 KiB on the wire,
      // 400 KB decoded.
      const value = new Array(4000).fill(0x61);
      const block = new Uint8Array([
        ...hpackInteger(0, 6, 0x40),
        ...hpackInteger(1, 7, 0),
        0x78,
        ...hpackInteger(value.length, 7, 0),
        ...value,
        ...new Array(100).fill(0x80 | 62),
      ]);
      await peer.write(rawFrame(FRAME.HEADERS, 4, 1, block));
      assert.match(await closedReason, /protocol error/);
      assert.match(events.lost[0], /Header list larger than/);
    });
  });
  await t.step("a header list within the limit is delivered", async () => {
    await withSession(async (peer, _session, events) => {
      await peer.write(rawFrame(FRAME.HEADERS, 1, 1, new Uint8Array([0x88])));
      for (let i = 0; i < MAX_CONTINUATION_FRAMES - 1; i++) {
        await peer.write(rawFrame(FRAME.CONTINUATION, 0, 1, new Uint8Array([0x88])));
      }
      await peer.write(rawFrame(FRAME.CONTINUATION, 4, 1, new Uint8Array([0x89])));
      await events.firstHeaders;
      assert.equal(events.headers[0].length, MAX_CONTINUATION_FRAMES + 1);
      assert.deepEqual(events.headers[0].at(-1), [":status", "204"]);
      assert.equal(peer.isClosed, false);
    });
  });
});
