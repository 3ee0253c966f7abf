/**
 * The platform's gRPC server at its edges: against grpc-js clients (interoperability, health,
 * deadlines, cancellation, concurrency) and against a raw HTTP/2 client written here (RFC 9113 rules:
 * preface, frame sizes, stream IDs, flow control, GOAWAY), on real loopback sockets.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { encodeHeaders, type HeaderField, HpackDecoder } from "./hpack.ts";
import {
  DEFAULT_MAX_CONCURRENT_STREAMS,
  frameMessage,
  GrpcServer,
  type GrpcServerOptions,
  GrpcStatus,
  GrpcStatusError,
} from "./grpc_server.ts";
import {
  FRAME,
  type RawFrame,
  rawFrame,
  settingsPayload,
  uint32,
} from "../../tests/helpers/raw_http2_peer.ts";
import { until } from "../../tests/helpers/poll.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const { DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION } = FRAME;
const END_STREAM = 1, END_HEADERS = 4, ACK = 1;

type Frame = RawFrame;

/** A hand-driven HTTP/2 client: writes raw frames, reads frames one by one. */
class RawPeer {
  readonly decoder = new HpackDecoder();
  #buffer = new Uint8Array(0);
  private constructor(readonly conn: Deno.TcpConn) {}

  static async connect(
    port: number,
    options: { preface?: boolean; settings?: [number, number][] } = {},
  ) {
    const peer = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port }));
    if (options.preface !== false) {
      await peer.write(PREFACE);
      await peer.write(rawFrame(SETTINGS, 0, 0, settingsPayload(options.settings ?? [])));
    }
    return peer;
  }

  write(bytes: Uint8Array): Promise<number> {
    return this.conn.write(bytes);
  }

  send(type: number, flags: number, streamId: number, payload?: Uint8Array): Promise<number> {
    return this.write(rawFrame(type, flags, streamId, payload));
  }

  /** A gRPC request on `streamId`: HEADERS then one DATA frame ending the stream. */
  async request(streamId: number, path: string, message: Uint8Array, extra: HeaderField[] = []) {
    const block = encodeHeaders([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      [":authority", "test"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ...extra,
    ]);
    await this.send(HEADERS, END_HEADERS, streamId, block);
    await this.send(DATA, END_STREAM, streamId, frameMessage(message));
  }

  /** The next frame, or null when the server closed the connection. */
  async next(): Promise<Frame | null> {
    for (;;) {
      if (this.#buffer.length >= 9) {
        const length = (this.#buffer[0] << 16) | (this.#buffer[1] << 8) | this.#buffer[2];
        if (this.#buffer.length >= 9 + length) {
          const frame = {
            type: this.#buffer[3],
            flags: this.#buffer[4],
            streamId: new DataView(this.#buffer.buffer, this.#buffer.byteOffset).getUint32(5) &
              0x7fffffff,
            payload: this.#buffer.slice(9, 9 + length),
          };
          this.#buffer = this.#buffer.slice(9 + length);
          return frame;
        }
      }
      const chunk = new Uint8Array(65536);
      let count: number | null;
      try {
        count = await this.conn.read(chunk);
      } catch {
        return null;
      }
      if (count === null) return null;
      const joined = new Uint8Array(this.#buffer.length + count);
      joined.set(this.#buffer);
      joined.set(chunk.subarray(0, count), this.#buffer.length);
      this.#buffer = joined;
    }
  }

  /** Frames up to the first one `until` accepts (included), skipping SETTINGS and its ACKs. */
  async until(until: (frame: Frame) => boolean): Promise<Frame[]> {
    const frames: Frame[] = [];
    for (;;) {
      const frame = await this.next();
      if (frame === null) throw new Error(`Connection closed after ${JSON.stringify(frames)}`);
      if (frame.type === SETTINGS) continue;
      frames.push(frame);
      if (until(frame)) return frames;
    }
  }

  /** The GOAWAY the server sends before closing: its error code. */
  async goawayCode(): Promise<number> {
    const frames = await this.until((frame) => frame.type === GOAWAY);
    const goaway = frames.at(-1)!;
    // Streams up to the GOAWAY's last stream ID may still be answered; then the socket closes.
    for (let frame = await this.next(); frame !== null; frame = await this.next()) {
      assert.ok(frame.streamId <= new DataView(goaway.payload.buffer).getUint32(0));
    }
    return new DataView(goaway.payload.buffer).getUint32(4);
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Closed by the server.
    }
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ECHO = "/test.Echo/Echo";
const SLOW = "/test.Echo/Slow";
const STREAM = "/test.Echo/Stream";
const BIDI = "/test.Echo/Chat";

/** A server with an echo method, a method that waits for its signal, and a streaming one. */
function startServer(
  options: GrpcServerOptions = {},
) {
  const server = new GrpcServer(options);
  const aborted: string[] = [];
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  server.addUnary(ECHO, (request) => {
    const text = decoder.decode(request);
    if (text === "fail") throw new GrpcStatusError(GrpcStatus.INVALID_ARGUMENT, "bad: ünïcode");
    if (text === "crash") throw new Error("boom");
    return Promise.resolve(request);
  });
  server.addUnary(SLOW, async (request, call) => {
    await new Promise<void>((resolve) => {
      call.signal.addEventListener("abort", () => {
        aborted.push(decoder.decode(request));
        resolve();
      }, { once: true });
      released.then(resolve);
    });
    return request;
  });
  server.addServerStream(STREAM, (request, _call, send) => {
    for (let i = 0; i < 3; i++) send(encoder.encode(`${decoder.decode(request)}-${i}`));
    return Promise.resolve();
  });
  // Answers each message with its upper case; "bye" ends the call, "fail" fails it.
  server.addBidiStream(BIDI, (call) => ({
    onMessage(message) {
      const text = decoder.decode(message);
      if (text === "fail") return call.fail(new GrpcStatusError(GrpcStatus.ABORTED, "asked to"));
      call.send(encoder.encode(text.toUpperCase()));
      if (text === "bye") call.end();
    },
    onEnd: () => call.end(),
  }));
  server.setHealth("", "SERVING");
  server.setHealth("test.Echo", "SERVING");
  const port = server.listen(0, "127.0.0.1");
  return { server, port, aborted, release };
}

/** A grpc-js client with identity codecs. */
function grpcClient(port: number): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

const identity = (bytes: Uint8Array) => Buffer.from(bytes);

function unary(
  client: grpc.Client,
  path: string,
  text: string,
  options: grpc.CallOptions = {},
): { call: grpc.ClientUnaryCall; done: Promise<string> } {
  let call!: grpc.ClientUnaryCall;
  const done = new Promise<string>((resolve, reject) => {
    call = client.makeUnaryRequest(
      path,
      identity,
      identity,
      Buffer.from(text),
      new grpc.Metadata(),
      options,
      (error, value) => error ? reject(error) : resolve(decoder.decode(value!)),
    );
  });
  return { call, done };
}

/** `HealthCheckRequest { service }` */
function healthRequest(service: string): Uint8Array {
  const bytes = encoder.encode(service);
  return Uint8Array.of(0x0a, bytes.length, ...bytes);
}

Deno.test("GrpcServer answers grpc-js clients: unary, streaming, statuses, health", async (t) => {
  const { server, port } = startServer();
  const client = grpcClient(port);
  try {
    await t.step("a unary call comes back", async () => {
      assert.equal(await unary(client, ECHO, "hello").done, "hello");
    });
    await t.step("a thrown status reaches the client with its message", async () => {
      await assert.rejects(unary(client, ECHO, "fail").done, (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
        assert.equal(error.details, "bad: ünïcode");
        return true;
      });
      await assert.rejects(unary(client, ECHO, "crash").done, (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.UNKNOWN);
        return true;
      });
    });
    await t.step("an unknown method is UNIMPLEMENTED", async () => {
      await assert.rejects(
        unary(client, "/test.Echo/Nope", "x").done,
        (error: grpc.ServiceError) => {
          assert.equal(error.code, grpc.status.UNIMPLEMENTED);
          return true;
        },
      );
    });
    await t.step("a server stream delivers every message, then OK", async () => {
      const messages: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const stream = client.makeServerStreamRequest(
          STREAM,
          identity,
          identity,
          Buffer.from("m"),
        );
        stream.on("data", (value: Uint8Array) => messages.push(decoder.decode(value)));
        stream.on("error", reject);
        stream.on(
          "status",
          (status: grpc.StatusObject) =>
            status.code === 0 ? resolve() : reject(new Error(status.details)),
        );
      });
      assert.deepEqual(messages, ["m-0", "m-1", "m-2"]);
    });
    await t.step("a bidirectional stream answers each message as it comes, then ends", async () => {
      const stream = client.makeBidiStreamRequest(BIDI, identity, identity);
      const seen: string[] = [];
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
      stream.on("error", () => {});
      const first = new Promise<void>((resolve) =>
        stream.on("data", (value: Uint8Array) => {
          seen.push(decoder.decode(value));
          resolve();
        })
      );
      stream.write(Buffer.from("hello"));
      // The answer to the first message arrives before the caller sends another.
      await first;
      assert.deepEqual(seen, ["HELLO"]);
      stream.write(Buffer.from("bye"));
      assert.equal((await status).code, grpc.status.OK);
      assert.deepEqual(seen, ["HELLO", "BYE"]);
    });
    await t.step("a bidirectional stream ends with the handler's status", async () => {
      const stream = client.makeBidiStreamRequest(BIDI, identity, identity);
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
      stream.on("error", () => {});
      stream.on("data", () => {});
      stream.write(Buffer.from("fail"));
      const ended = await status;
      assert.equal(ended.code, grpc.status.ABORTED);
      assert.equal(ended.details, "asked to");
    });
    await t.step("grpc.health.v1 Check: SERVING, NOT_SERVING, NOT_FOUND", async () => {
      const check = (service: string) =>
        new Promise<Uint8Array>((resolve, reject) =>
          client.makeUnaryRequest(
            "/grpc.health.v1.Health/Check",
            identity,
            identity,
            Buffer.from(healthRequest(service)),
            (error, value) => error ? reject(error) : resolve(value!),
          )
        );
      assert.deepEqual([...await check("test.Echo")], [0x08, 1]);
      server.setHealth("test.Echo", "NOT_SERVING");
      assert.deepEqual([...await check("test.Echo")], [0x08, 2]);
      assert.deepEqual([...await check("")], [0x08, 1]);
      await assert.rejects(check("other"), (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.NOT_FOUND);
        return true;
      });
    });
    await t.step("grpc.health.v1 Watch streams each change", async () => {
      const statuses: number[] = [];
      const stream = client.makeServerStreamRequest(
        "/grpc.health.v1.Health/Watch",
        identity,
        identity,
        Buffer.from(healthRequest("test.Echo")),
      );
      const seen = new Promise<void>((resolve) => {
        stream.on("data", (value: Uint8Array) => {
          statuses.push(value[1]);
          if (statuses.length === 1) server.setHealth("test.Echo", "SERVING");
          if (statuses.length === 2) resolve();
        });
      });
      stream.on("error", () => {});
      await seen;
      stream.cancel();
      assert.deepEqual(statuses, [2, 1]);
    });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("GrpcServer ends calls on deadlines and cancellation, and limits concurrent streams", async (t) => {
  const { server, port, aborted, release } = startServer({ maxConcurrentStreams: 2 });
  const client = grpcClient(port);
  try {
    await t.step("a passed deadline is DEADLINE_EXCEEDED and aborts the handler", async () => {
      const { done } = unary(client, SLOW, "late", { deadline: Date.now() + 150 });
      await assert.rejects(done, (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
        return true;
      });
      await until('the handler of "late" to be aborted', () => aborted.includes("late"));
    });
    await t.step("a cancelled call aborts the handler", async () => {
      const { call, done } = unary(client, SLOW, "cancelled");
      done.catch(() => {});
      await until("1 calls in flight", () => server.activeCalls === 1);
      call.cancel();
      await until('the handler of "cancelled" to be aborted', () => aborted.includes("cancelled"));
    });
    await t.step(
      "a third stream over the limit of 2 is refused (RST_STREAM REFUSED_STREAM)",
      async () => {
        const peer = await RawPeer.connect(port);
        try {
          await peer.request(1, SLOW, encoder.encode("a"));
          await peer.request(3, SLOW, encoder.encode("b"));
          await peer.request(5, SLOW, encoder.encode("c"));
          const frames = await peer.until((frame) => frame.type === RST_STREAM);
          const reset = frames.at(-1)!;
          assert.equal(reset.streamId, 5);
          assert.equal(new DataView(reset.payload.buffer).getUint32(0), 7);
        } finally {
          peer.close();
        }
        await until("0 calls in flight", () => server.activeCalls === 0);
      },
    );
    await t.step(
      "grpc-js keeps five calls over a limit of 2 waiting, and all succeed",
      async () => {
        const calls = ["1", "2", "3", "4", "5"].map((text) => unary(client, SLOW, text).done);
        await until("2 calls in flight", () => server.activeCalls === 2);
        release();
        assert.deepEqual(await Promise.all(calls), ["1", "2", "3", "4", "5"]);
      },
    );
  } finally {
    release();
    client.close();
    await server.close();
  }
});

/** The SETTINGS values of a SETTINGS frame's payload, by identifier. */
function settingsOf(payload: Uint8Array): Map<number, number> {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const values = new Map<number, number>();
  for (let offset = 0; offset + 6 <= payload.length; offset += 6) {
    values.set(view.getUint16(offset), view.getUint32(offset + 2));
  }
  return values;
}

/** The trailers (the last HEADERS block) of stream `streamId`, read up to its END_STREAM. */
async function trailersOf(peer: RawPeer, streamId: number): Promise<Map<string, string>> {
  const frames = await peer.until((frame) =>
    frame.streamId === streamId && (frame.flags & END_STREAM) !== 0
  );
  // Every header block is decoded in order, to keep the HPACK table in step.
  let last = new Map<string, string>();
  for (const frame of frames) {
    if (frame.type !== HEADERS) continue;
    const fields = new Map(peer.decoder.decode(frame.payload));
    if (frame.streamId === streamId) last = fields;
  }
  return last;
}

Deno.test("GrpcServer announces SETTINGS_MAX_CONCURRENT_STREAMS: its default, and what it is given", async (t) => {
  for (const [given, announced] of [[undefined, DEFAULT_MAX_CONCURRENT_STREAMS], [3, 3]]) {
    await t.step(`${given ?? "default"}: ${announced}`, async () => {
      const { server, port } = startServer(
        given === undefined ? {} : { maxConcurrentStreams: given },
      );
      const peer = await RawPeer.connect(port);
      try {
        const first = await peer.next();
        assert.equal(first?.type, SETTINGS);
        assert.equal(settingsOf(first!.payload).get(0x3), announced);
      } finally {
        peer.close();
        await server.close();
      }
    });
  }
});

Deno.test("GrpcServer caps every call's deadline at maxDeadlineMs, watches excepted", async (t) => {
  const { server, port, aborted, release } = startServer({ maxDeadlineMs: 300 });
  const client = grpcClient(port);
  try {
    await t.step(
      "grpc-js, no deadline: DEADLINE_EXCEEDED from the server, handler aborted",
      async () => {
        const { done } = unary(client, SLOW, "no-deadline");
        await assert.rejects(done, (error: grpc.ServiceError) => {
          assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
          assert.match(error.details, /server's maximum of 300 ms/);
          return true;
        });
        await until(
          'the handler of "no-deadline" to be aborted',
          () => aborted.includes("no-deadline"),
        );
      },
    );
    await t.step("grpc-js, a deadline an hour away: capped the same way", async () => {
      const { done } = unary(client, SLOW, "hour", { deadline: Date.now() + 3_600_000 });
      await assert.rejects(done, (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
        assert.match(error.details, /server's maximum/);
        return true;
      });
    });
    await t.step("raw peer: the largest grpc-timeout there is (99999999H) is capped", async () => {
      const peer = await RawPeer.connect(port);
      try {
        await peer.request(1, SLOW, encoder.encode("huge"), [["grpc-timeout", "99999999H"]]);
        const trailers = await trailersOf(peer, 1);
        assert.equal(trailers.get("grpc-status"), String(GrpcStatus.DEADLINE_EXCEEDED));
      } finally {
        peer.close();
      }
    });
    await t.step("raw peer: a malformed grpc-timeout is INTERNAL", async () => {
      const peer = await RawPeer.connect(port);
      try {
        await peer.request(1, SLOW, encoder.encode("bad"), [["grpc-timeout", "1x"]]);
        const trailers = await trailersOf(peer, 1);
        assert.equal(trailers.get("grpc-status"), String(GrpcStatus.INTERNAL));
      } finally {
        peer.close();
      }
    });
    await t.step("grpc-js, a bidirectional call without a deadline: capped", async () => {
      const call = client.makeBidiStreamRequest(BIDI, identity, identity);
      const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      call.on("data", () => {});
      call.on("error", () => {});
      call.write(Buffer.from("hello"));
      assert.equal((await status).code, grpc.status.DEADLINE_EXCEEDED);
    });
    await t.step(
      "a health Watch outlives the cap: a capped call beside it ends, it does not",
      async () => {
        const peer = await RawPeer.connect(port);
        try {
          await peer.request(1, "/grpc.health.v1.Health/Watch", healthRequest(""));
          await peer.request(3, SLOW, encoder.encode("beside-watch"));
          const trailers = await trailersOf(peer, 3);
          assert.equal(trailers.get("grpc-status"), String(GrpcStatus.DEADLINE_EXCEEDED));
          await until("the capped call to end", () => server.activeCalls === 1);
          // The watch is still open: setting the health sends it an update on stream 1.
          server.setHealth("", "NOT_SERVING");
          const update = await peer.until((frame) =>
            frame.type === DATA && frame.streamId === 1 &&
            frame.payload.at(-1) === 2
          );
          assert.equal(update.at(-1)!.flags & END_STREAM, 0);
        } finally {
          peer.close();
        }
      },
    );
  } finally {
    release();
    client.close();
    await server.close();
  }
});

Deno.test("GrpcServer refuses a stream over the limit and serves on: the connection and HPACK stay in step", async () => {
  // One stream at a time; the first ends on the server's deadline cap.
  const { server, port } = startServer({ maxConcurrentStreams: 1, maxDeadlineMs: 300 });
  const peer = await RawPeer.connect(port);
  try {
    await peer.request(1, SLOW, encoder.encode("holder"));
    // Its HEADERS and DATA both arrive: the DATA of a refused stream must not end the connection.
    await peer.request(3, ECHO, encoder.encode("refused"), [["x-refused", "adds-to-hpack"]]);
    const reset = (await peer.until((frame) => frame.type === RST_STREAM)).at(-1)!;
    assert.equal(reset.streamId, 3);
    assert.equal(new DataView(reset.payload.buffer).getUint32(0), 7); // REFUSED_STREAM
    assert.equal(
      (await trailersOf(peer, 1)).get("grpc-status"),
      String(GrpcStatus.DEADLINE_EXCEEDED),
    );
    await until("the held stream to end", () => server.activeCalls === 0);
    await peer.request(5, ECHO, encoder.encode("served"), [["x-refused", "adds-to-hpack"]]);
    const frames = await peer.until((frame) =>
      frame.streamId === 5 && (frame.flags & END_STREAM) !== 0
    );
    const data = frames.find((frame) => frame.type === DATA && frame.streamId === 5);
    assert.equal(decoder.decode(data!.payload.subarray(5)), "served");
  } finally {
    peer.close();
    await server.close();
  }
});

Deno.test("GrpcServer drains with GOAWAY: the call in flight finishes, then the connection closes", async () => {
  const { server, port, release } = startServer({ goawayOnDrain: true });
  const peer = await RawPeer.connect(port);
  try {
    await peer.request(1, SLOW, encoder.encode("in flight"));
    await until("1 calls in flight", () => server.activeCalls === 1);
    server.drain();
    const goaway = (await peer.until((frame) => frame.type === GOAWAY)).at(-1)!;
    const view = new DataView(goaway.payload.buffer);
    assert.equal(view.getUint32(0), 2 ** 31 - 1, "the first GOAWAY refuses nothing sent");
    assert.equal(view.getUint32(4), 0);
    // A stream opened after the GOAWAY is refused.
    await peer.request(3, ECHO, encoder.encode("late"));
    const refused = (await peer.until((frame) => frame.type === RST_STREAM)).at(-1)!;
    assert.equal(refused.streamId, 3);
    release();
    const answer = await peer.until((frame) =>
      frame.type === HEADERS && (frame.flags & END_STREAM) !== 0
    );
    const trailers = new Map(peer.decoder.decode(answer.at(-1)!.payload));
    assert.equal(trailers.get("grpc-status"), "0");
    assert.ok(answer.some((frame) => frame.type === DATA && frame.streamId === 1));
    assert.equal(await peer.next(), null, "the connection closes once the call has ended");
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
  } finally {
    peer.close();
    release();
    await server.close();
  }
});

Deno.test("GrpcServer answers a raw HTTP/2 peer by RFC 9113", async (t) => {
  const { server, port } = startServer({ maxMessageBytes: 1024 });
  try {
    await t.step("SETTINGS first, then PING is acknowledged with its payload", async () => {
      const peer = await RawPeer.connect(port);
      try {
        const first = await peer.next();
        assert.equal(first?.type, SETTINGS);
        await peer.send(PING, 0, 0, encoder.encode("12345678"));
        const pong = (await peer.until((frame) => frame.type === PING)).at(-1)!;
        assert.equal(pong.flags & ACK, ACK);
        assert.equal(decoder.decode(pong.payload), "12345678");
      } finally {
        peer.close();
      }
    });
    await t.step("a unary answer: HEADERS, DATA, trailers with END_STREAM", async () => {
      const peer = await RawPeer.connect(port);
      try {
        await peer.request(1, ECHO, encoder.encode("raw"));
        const frames = await peer.until((frame) => (frame.flags & END_STREAM) !== 0);
        const headers = new Map(peer.decoder.decode(frames[0].payload));
        assert.equal(headers.get(":status"), "200");
        assert.equal(headers.get("content-type"), "application/grpc");
        const data = frames.find((frame) => frame.type === DATA)!;
        assert.equal(decoder.decode(data.payload.subarray(5)), "raw");
        assert.equal(new Map(peer.decoder.decode(frames.at(-1)!.payload)).get("grpc-status"), "0");
      } finally {
        peer.close();
      }
    });
    await t.step("the answer waits for the peer's stream window (flow control)", async () => {
      // INITIAL_WINDOW_SIZE 4: the 8-byte framed message cannot go out whole.
      const peer = await RawPeer.connect(port, { settings: [[4, 4]] });
      try {
        await peer.request(1, ECHO, encoder.encode("abc"));
        const first = await peer.until((frame) => frame.type === DATA);
        assert.equal(first.at(-1)!.payload.length, 4);
        await peer.send(WINDOW_UPDATE, 0, 1, uint32(100));
        const rest = await peer.until((frame) => (frame.flags & END_STREAM) !== 0);
        const data = rest.filter((frame) => frame.type === DATA);
        assert.equal(data.reduce((sum, frame) => sum + frame.payload.length, 0), 4);
      } finally {
        peer.close();
      }
    });
    await t.step("a header block in HEADERS + CONTINUATION is one request", async () => {
      const peer = await RawPeer.connect(port);
      try {
        const block = encodeHeaders([
          [":method", "POST"],
          [":scheme", "http"],
          [":path", ECHO],
          [":authority", "test"],
          ["content-type", "application/grpc"],
        ]);
        await peer.send(HEADERS, 0, 1, block.subarray(0, 5));
        await peer.send(CONTINUATION, END_HEADERS, 1, block.subarray(5));
        await peer.send(DATA, END_STREAM, 1, frameMessage(encoder.encode("split")));
        const frames = await peer.until((frame) => (frame.flags & END_STREAM) !== 0);
        const data = frames.find((frame) => frame.type === DATA)!;
        assert.equal(decoder.decode(data.payload.subarray(5)), "split");
      } finally {
        peer.close();
      }
    });
    await t.step(
      "a message split over DATA frames reaches a bidirectional handler whole",
      async () => {
        const peer = await RawPeer.connect(port);
        try {
          const block = encodeHeaders([
            [":method", "POST"],
            [":scheme", "http"],
            [":path", BIDI],
            [":authority", "test"],
            ["content-type", "application/grpc"],
          ]);
          await peer.send(HEADERS, END_HEADERS, 1, block);
          const framed = frameMessage(encoder.encode("split"));
          await peer.send(DATA, 0, 1, framed.subarray(0, 3));
          await peer.send(DATA, 0, 1, framed.subarray(3));
          const data = (await peer.until((frame) => frame.type === DATA)).at(-1)!;
          assert.equal(decoder.decode(data.payload.subarray(5)), "SPLIT");
          await peer.send(DATA, END_STREAM, 1, new Uint8Array(0));
          const frames = await peer.until((frame) => (frame.flags & END_STREAM) !== 0);
          assert.equal(
            new Map(peer.decoder.decode(frames.at(-1)!.payload)).get("grpc-status"),
            "0",
          );
        } finally {
          peer.close();
        }
      },
    );
    await t.step("a message over the limit is RESOURCE_EXHAUSTED", async () => {
      const peer = await RawPeer.connect(port);
      try {
        await peer.request(1, ECHO, new Uint8Array(2000));
        const frames = await peer.until((frame) => (frame.flags & END_STREAM) !== 0);
        const trailers = new Map(peer.decoder.decode(frames.at(-1)!.payload));
        assert.equal(trailers.get("grpc-status"), String(GrpcStatus.RESOURCE_EXHAUSTED));
      } finally {
        peer.close();
      }
    });
    await t.step("a body that is not one gRPC message is INTERNAL", async () => {
      const peer = await RawPeer.connect(port);
      try {
        const block = encodeHeaders([
          [":method", "POST"],
          [":scheme", "http"],
          [":path", ECHO],
          [":authority", "test"],
          ["content-type", "application/grpc"],
        ]);
        await peer.send(HEADERS, END_HEADERS, 1, block);
        await peer.send(DATA, END_STREAM, 1, Uint8Array.of(0, 0, 0, 0, 9, 1));
        const frames = await peer.until((frame) => (frame.flags & END_STREAM) !== 0);
        const trailers = new Map(peer.decoder.decode(frames.at(-1)!.payload));
        assert.equal(trailers.get("grpc-status"), String(GrpcStatus.INTERNAL));
      } finally {
        peer.close();
      }
    });
    const connectionErrors: [string, (peer: RawPeer) => Promise<unknown>, number][] = [
      [
        "a frame over SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR",
        (peer) => peer.send(DATA, 0, 1, new Uint8Array(16_385)),
        0x6,
      ],
      ["DATA on stream 0: PROTOCOL_ERROR", (peer) => peer.send(DATA, 0, 0, Uint8Array.of(1)), 0x1],
      [
        "DATA on an idle stream: PROTOCOL_ERROR",
        (peer) => peer.send(DATA, 0, 7, Uint8Array.of(1)),
        0x1,
      ],
      [
        "a stream with an even ID: PROTOCOL_ERROR",
        (peer) => peer.send(HEADERS, END_HEADERS, 2, encodeHeaders([[":path", ECHO]])),
        0x1,
      ],
      ["a stream ID lower than an earlier one: PROTOCOL_ERROR", async (peer) => {
        await peer.request(5, ECHO, encoder.encode("x"));
        await peer.send(HEADERS, END_HEADERS, 3, encodeHeaders([[":path", ECHO]]));
      }, 0x1],
      [
        "SETTINGS of a size not a multiple of 6: FRAME_SIZE_ERROR",
        (peer) => peer.send(SETTINGS, 0, 0, new Uint8Array(5)),
        0x6,
      ],
      [
        "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1: FLOW_CONTROL_ERROR",
        (peer) => peer.send(SETTINGS, 0, 0, settingsPayload([[4, 2 ** 31]])),
        0x3,
      ],
      [
        "a WINDOW_UPDATE of 0 on the connection: PROTOCOL_ERROR",
        (peer) => peer.send(WINDOW_UPDATE, 0, 0, uint32(0)),
        0x1,
      ],
      [
        "a connection window over 2^31-1: FLOW_CONTROL_ERROR",
        (peer) => peer.send(WINDOW_UPDATE, 0, 0, uint32(2 ** 31 - 1)),
        0x3,
      ],
      [
        "a PING of 7 bytes: FRAME_SIZE_ERROR",
        (peer) => peer.send(PING, 0, 0, new Uint8Array(7)),
        0x6,
      ],
      [
        "CONTINUATION without HEADERS: PROTOCOL_ERROR",
        (peer) => peer.send(CONTINUATION, END_HEADERS, 1, new Uint8Array(1)),
        0x1,
      ],
      ["another frame inside a header block: PROTOCOL_ERROR", async (peer) => {
        await peer.send(HEADERS, 0, 1, encodeHeaders([[":path", ECHO]]));
        await peer.send(PING, 0, 0, new Uint8Array(8));
      }, 0x1],
      [
        "an undecodable header block: COMPRESSION_ERROR",
        (peer) => peer.send(HEADERS, END_HEADERS, 1, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f)),
        0x9,
      ],
    ];
    for (const [name, act, code] of connectionErrors) {
      await t.step(name, async () => {
        const peer = await RawPeer.connect(port);
        try {
          await act(peer);
          assert.equal(await peer.goawayCode(), code);
        } finally {
          peer.close();
        }
      });
    }
    await t.step("a client that does not speak HTTP/2 is closed", async () => {
      const peer = await RawPeer.connect(port, { preface: false });
      try {
        await peer.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert.equal(await peer.goawayCode(), 0x1);
      } finally {
        peer.close();
      }
    });
  } finally {
    await server.close();
  }
});

Deno.test("GrpcServer drains without GOAWAY by default: no new connection, the open one serves on", async () => {
  const { server, port } = startServer();
  const client = grpcClient(port);
  try {
    assert.equal(await unary(client, ECHO, "before").done, "before");
    server.drain();
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
    assert.equal(await unary(client, ECHO, "after").done, "after");
  } finally {
    client.close();
    await server.close();
  }
});
