import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  CAPABILITY_SERVICE,
  INVOKE_METHOD,
  INVOKE_STREAM_METHOD,
  type InvokeEvent,
  type InvokeRequest,
  type InvokeResponse,
} from "../../proto/mod.ts";
import { type CallDelivery, GrpcCallError, GrpcChannel } from "./grpc_channel.ts";
import { encodeHeaders, type HeaderField, HpackDecoder } from "./hpack.ts";
import { until } from "../../tests/helpers/poll.ts";

/** What the test server does, by tool name; arguments are JSON. */
interface Behaviour {
  /** Answers with this status and message instead of a result. */
  fail?: { code: number; details: string; trailer?: string };
  /** Never answers; resolves `cancelled` when the client cancels. */
  hold?: boolean;
  /** Answers with this many bytes of result. */
  resultBytes?: number;
  /** InvokeStream: progress events before the result. */
  events?: number;
}

interface TestServer {
  port: number;
  /** Calls the server saw cancelled by the client. */
  cancelled: number;
  /** TCP connections the server accepted (through a counting forwarder). */
  connections: number;
  /** Calls started, by `requestId`. */
  started: string[];
  close(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  const server = new grpc.Server();
  const state = { cancelled: 0, started: [] as string[] };
  const held: (() => void)[] = [];
  function answer(request: InvokeRequest): { error?: grpc.ServiceError; result?: InvokeResponse } {
    state.started.push(request.requestId);
    const behaviour = JSON.parse(request.argumentsJson || "{}") as Behaviour;
    if (behaviour.fail) {
      const metadata = new grpc.Metadata();
      if (behaviour.fail.trailer) metadata.set("x-trailer", behaviour.fail.trailer);
      const error = Object.assign(new Error(behaviour.fail.details), {
        code: behaviour.fail.code,
        details: behaviour.fail.details,
        metadata,
      });
      return { error };
    }
    const size = behaviour.resultBytes ?? 0;
    return {
      result: {
        resultJson: JSON.stringify({ length: request.argumentsJson.length, pad: "x".repeat(size) }),
        instanceId: "test",
      },
    };
  }
  server.addService(CAPABILITY_SERVICE, {
    invoke(
      call: grpc.ServerUnaryCall<InvokeRequest, InvokeResponse>,
      callback: grpc.sendUnaryData<InvokeResponse>,
    ) {
      call.on("cancelled", () => state.cancelled++);
      if ((JSON.parse(call.request.argumentsJson || "{}") as Behaviour).hold) {
        state.started.push(call.request.requestId);
        held.push(() => callback(null, { resultJson: "{}", instanceId: "test" }));
        return;
      }
      const { error, result } = answer(call.request);
      callback(error ?? null, result);
    },
    invokeStream(call: grpc.ServerWritableStream<InvokeRequest, InvokeEvent>) {
      const behaviour = JSON.parse(call.request.argumentsJson || "{}") as Behaviour;
      const total = behaviour.events ?? 0;
      for (let i = 1; i <= total; i++) {
        call.write({ progress: { progress: i, total, message: "" } });
      }
      const { error, result } = answer(call.request);
      if (error) {
        call.emit("error", error);
        return;
      }
      call.write({ result });
      call.end();
    },
    describe(_call: unknown, callback: grpc.sendUnaryData<unknown>) {
      callback(null, { service: "test", version: "1", tools: [], instanceId: "test" });
    },
  });
  const backendPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) reject(error);
      else resolve(port);
    })
  );
  // A forwarder in front of the server counts the connections the channel opens.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pipes: Promise<unknown>[] = [];
  const conns: Deno.Conn[] = [];
  let connections = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      connections++;
      const backend = await Deno.connect({ hostname: "127.0.0.1", port: backendPort });
      conns.push(conn, backend);
      pipes.push(
        conn.readable.pipeTo(backend.writable).catch(() => {}),
        backend.readable.pipeTo(conn.writable).catch(() => {}),
      );
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get cancelled() {
      return state.cancelled;
    },
    get connections() {
      return connections;
    },
    started: state.started,
    async close() {
      for (const release of held.splice(0)) release();
      await closeListener(listener, accepting, conns, pipes);
      server.forceShutdown();
    },
  };
}

/** Stops accepting, closes every connection and waits for the tasks that served them. */
async function closeListener(
  listener: Deno.Listener,
  accepting: Promise<void>,
  conns: Deno.Conn[],
  tasks: Promise<unknown>[],
): Promise<void> {
  listener.close();
  await accepting.catch(() => {});
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // Closed already, by its peer or its pipe.
    }
  }
  await Promise.all(tasks);
}

function invokeBytes(behaviour: Behaviour, requestId = "test"): Uint8Array {
  return INVOKE_METHOD.serialize({
    tool: "t",
    argumentsJson: JSON.stringify(behaviour),
    requestId,
  });
}

function assertStatus(code: number, details: string | RegExp, delivery?: CallDelivery) {
  return (error: unknown) => {
    assert.ok(error instanceof GrpcCallError, `a GrpcCallError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (typeof details === "string") assert.equal(error.details, details);
    else assert.match(error.details, details);
    if (delivery !== undefined) assert.equal(error.delivery, delivery, error.message);
    return true;
  };
}

Deno.test("GrpcChannel calls a grpc-js server over one reused connection", async (t) => {
  const server = await startServer();
  const channel = new GrpcChannel("127.0.0.1", server.port);
  try {
    await t.step(
      "unary calls, one after another and 20 at a time, share a connection",
      async () => {
        await channel.ready(2_000);
        assert.equal(channel.state, "ready");
        for (let i = 0; i < 5; i++) {
          const answer = INVOKE_METHOD.deserialize(
            await channel.unary(INVOKE_METHOD.path, invokeBytes({}), {
              deadline: Date.now() + 5_000,
            }),
          );
          assert.equal(answer.instanceId, "test");
        }
        await Promise.all(
          Array.from({ length: 20 }, () => channel.unary(INVOKE_METHOD.path, invokeBytes({}))),
        );
        assert.equal(server.connections, 1);
      },
    );
    await t.step("a request and an answer larger than the flow-control windows", async () => {
      const big = { resultBytes: 300_000, pad: "y".repeat(200_000) };
      const answer = INVOKE_METHOD.deserialize(
        await channel.unary(INVOKE_METHOD.path, invokeBytes(big)),
      );
      const result = JSON.parse(answer.resultJson);
      assert.equal(result.length, JSON.stringify(big).length);
      assert.equal(result.pad.length, 300_000);
    });
    await t.step("an answer over the message limit is RESOURCE_EXHAUSTED", async () => {
      const small = new GrpcChannel("127.0.0.1", server.port, { maxReceiveMessageBytes: 1_000 });
      try {
        await assert.rejects(
          small.unary(INVOKE_METHOD.path, invokeBytes({ resultBytes: 5_000 })),
          assertStatus(grpc.status.RESOURCE_EXHAUSTED, /^Received message larger than max/),
        );
      } finally {
        small.close();
      }
    });
    await t.step("status, message and metadata of a failed call", async () => {
      const details = 'Invalid "city": 100% wrong, café';
      await assert.rejects(
        channel.unary(
          INVOKE_METHOD.path,
          invokeBytes({ fail: { code: grpc.status.INVALID_ARGUMENT, details, trailer: "t-1" } }),
        ),
        (error: unknown) => {
          assertStatus(grpc.status.INVALID_ARGUMENT, details)(error);
          assert.equal((error as GrpcCallError).metadata["x-trailer"], "t-1");
          return true;
        },
      );
    });
    await t.step("a server stream delivers every message in order", async () => {
      const events: InvokeEvent[] = [];
      await channel.serverStream(INVOKE_STREAM_METHOD.path, invokeBytes({ events: 3 }), {
        onMessage: (bytes) => events.push(INVOKE_STREAM_METHOD.deserialize(bytes)),
      });
      assert.deepEqual(events.map((event) => event.event), [
        "progress",
        "progress",
        "progress",
        "result",
      ]);
    });
    await t.step("a failed server stream rejects with the server's status", async () => {
      await assert.rejects(
        channel.serverStream(
          INVOKE_STREAM_METHOD.path,
          invokeBytes({ fail: { code: grpc.status.NOT_FOUND, details: "no such tool" } }),
          { onMessage: () => {} },
        ),
        assertStatus(grpc.status.NOT_FOUND, "no such tool"),
      );
    });
    await t.step("the deadline ends a call the server holds, and the server sees it", async () => {
      const cancelledBefore = server.cancelled;
      await assert.rejects(
        channel.unary(INVOKE_METHOD.path, invokeBytes({ hold: true }), {
          deadline: Date.now() + 200,
        }),
        assertStatus(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded"),
      );
      await until("the server to see the cancellation", () => server.cancelled > cancelledBefore);
    });
    await t.step("a deadline already past fails before anything is sent", async () => {
      const started = server.started.length;
      await assert.rejects(
        channel.unary(INVOKE_METHOD.path, invokeBytes({}), { deadline: Date.now() - 1 }),
        assertStatus(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded"),
      );
      assert.equal(server.started.length, started);
    });
    await t.step("aborting the signal cancels the call on the server", async () => {
      const cancelledBefore = server.cancelled;
      const controller = new AbortController();
      const call = channel.unary(INVOKE_METHOD.path, invokeBytes({ hold: true }, "held"), {
        signal: controller.signal,
      });
      await until("the call to reach the server", () => server.started.includes("held"));
      controller.abort();
      await assert.rejects(call, assertStatus(grpc.status.CANCELLED, "Cancelled on client"));
      await until("the server to see the cancellation", () => server.cancelled > cancelledBefore);
    });
    await t.step("after close() no call starts", async () => {
      channel.close();
      assert.equal(channel.state, "shutdown");
      await assert.rejects(
        channel.unary(INVOKE_METHOD.path, invokeBytes({})),
        assertStatus(grpc.status.UNAVAILABLE, "Channel has been shut down"),
      );
    });
    assert.equal(server.connections, 2, "the channel and the small one, one connection each");
  } finally {
    channel.close();
    await server.close();
  }
});

Deno.test("GrpcChannel reports a refused connection as not established", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const channel = new GrpcChannel("127.0.0.1", port, {
    reconnectBackoffMs: { initial: 5_000, max: 5_000 },
  });
  try {
    await assert.rejects(
      channel.ready(1_000),
      assertStatus(grpc.status.UNAVAILABLE, /^No connection established\. Last error: /),
    );
    assert.equal(channel.state, "transient-failure");
    // Within the backoff a call fails at once, as the server never saw it.
    await assert.rejects(
      channel.unary(INVOKE_METHOD.path, invokeBytes({})),
      assertStatus(grpc.status.UNAVAILABLE, /^No connection established/),
    );
  } finally {
    channel.close();
  }
});

/** A hand-written HTTP/2 server for what grpc-js servers do not do on demand. */
interface RawPeer {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /**
   * The most requests that completed within one read: above 1, a request was sent before the
   * answer to the one before it had been written.
   */
  maxRequestsPerRead: number;
  close(): Promise<void>;
}

/** Each request stream gets `respond(streamId, index)` frames; `index` counts requests overall. */
function startRawPeer(
  respond: (streamId: number, index: number) => Uint8Array[],
  settings: [number, number][] = [],
): RawPeer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const loops: Promise<void>[] = [];
  let requests = 0;
  let connections = 0;
  let maxRequestsPerRead = 0;
  async function serve(conn: Deno.Conn): Promise<void> {
    const decoder = new HpackDecoder();
    let data = new Uint8Array(0);
    const buffer = new Uint8Array(65_536);
    let prefaceSeen = false;
    const payload = new Uint8Array(settings.length * 6);
    settings.forEach(([id, value], i) => {
      new DataView(payload.buffer).setUint16(i * 6, id);
      new DataView(payload.buffer).setUint32(i * 6 + 2, value);
    });
    await conn.write(rawFrame(0x4, 0, 0, payload));
    for (;;) {
      const count = await conn.read(buffer).catch(() => null);
      if (count === null) return;
      const joined = new Uint8Array(data.length + count);
      joined.set(data);
      joined.set(buffer.subarray(0, count), data.length);
      data = joined;
      let requestsInRead = 0;
      if (!prefaceSeen) {
        if (data.length < 24) continue;
        data = data.slice(24);
        prefaceSeen = true;
      }
      while (data.length >= 9) {
        const length = (data[0] << 16) | (data[1] << 8) | data[2];
        if (data.length < 9 + length) break;
        const [type, flags] = [data[3], data[4]];
        const streamId = new DataView(data.buffer, data.byteOffset).getUint32(5) & 0x7fffffff;
        const body = data.slice(9, 9 + length);
        data = data.slice(9 + length);
        if (type === 0x4 && !(flags & 1)) await conn.write(rawFrame(0x4, 1, 0));
        if (type === 0x1) decoder.decode(body);
        // A request is complete with its END_STREAM DATA frame.
        if (type === 0x0 && flags & 1) {
          maxRequestsPerRead = Math.max(maxRequestsPerRead, ++requestsInRead);
          for (const frame of respond(streamId, requests++)) await conn.write(frame);
        }
      }
    }
  }
  const accepting = (async () => {
    for await (const conn of listener) {
      connections++;
      conns.push(conn);
      conn.setNoDelay(true);
      loops.push(serve(conn).catch(() => {}));
    }
  })();
  let closing: Promise<void> | undefined;
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get connections() {
      return connections;
    },
    get maxRequestsPerRead() {
      return maxRequestsPerRead;
    },
    close() {
      closing ??= closeListener(listener, accepting, conns, loops);
      return closing;
    },
  };
}

function rawFrame(
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

function headersFrame(streamId: number, fields: HeaderField[], endStream: boolean): Uint8Array {
  return rawFrame(0x1, 0x4 | (endStream ? 1 : 0), streamId, encodeHeaders(fields));
}

function okAnswer(streamId: number): Uint8Array[] {
  // One empty InvokeResponse message.
  const body = new Uint8Array([0, 0, 0, 0, 0]);
  return [
    headersFrame(streamId, [[":status", "200"], ["content-type", "application/grpc"]], false),
    rawFrame(0x0, 0, streamId, body),
    headersFrame(streamId, [["grpc-status", "0"]], true),
  ];
}

function goaway(lastStreamId: number): Uint8Array {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setUint32(0, lastStreamId);
  return rawFrame(0x7, 0, 0, payload);
}

function rstStream(streamId: number, code: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, code);
  return rawFrame(0x3, 0, streamId, payload);
}

Deno.test("GrpcChannel maps what an HTTP/2 peer sends to gRPC statuses", async (t) => {
  const cases: [string, (streamId: number) => Uint8Array[], number, string, CallDelivery][] = [
    [
      "trailers-only error",
      (id) => [
        headersFrame(
          id,
          [[":status", "200"], ["grpc-status", "5"], ["grpc-message", "gone%20"]],
          true,
        ),
      ],
      grpc.status.NOT_FOUND,
      "gone ",
      "answered",
    ],
    [
      "HTTP 503 without a gRPC status",
      (id) => [headersFrame(id, [[":status", "503"]], true)],
      grpc.status.UNAVAILABLE,
      "Received HTTP status code 503",
      "answered",
    ],
    [
      "RST_STREAM REFUSED_STREAM",
      (id) => [rstStream(id, 0x7)],
      grpc.status.UNAVAILABLE,
      "Stream refused by server",
      "not-sent",
    ],
    [
      "RST_STREAM CANCEL",
      (id) => [rstStream(id, 0x8)],
      grpc.status.CANCELLED,
      "Call cancelled",
      "sent-unanswered",
    ],
    [
      "GOAWAY below the stream",
      () => [goaway(0)],
      grpc.status.UNAVAILABLE,
      "Stream refused by server",
      "not-sent",
    ],
    [
      "a unary answer without a message",
      (id) => [
        headersFrame(id, [[":status", "200"], ["content-type", "application/grpc"]], false),
        headersFrame(id, [["grpc-status", "0"]], true),
      ],
      grpc.status.UNIMPLEMENTED,
      "No message received",
      "answered",
    ],
  ];
  for (const [label, respond, code, details, delivery] of cases) {
    await t.step(label, async () => {
      const peer = startRawPeer((id) => respond(id));
      const channel = new GrpcChannel("127.0.0.1", peer.port);
      try {
        await assert.rejects(
          channel.unary(INVOKE_METHOD.path, invokeBytes({})),
          assertStatus(code, details, delivery),
        );
      } finally {
        channel.close();
        await peer.close();
      }
    });
  }
});

Deno.test("GrpcChannel opens a new connection after GOAWAY, and reports a dropped one", async (t) => {
  await t.step("after GOAWAY, later calls go over a new connection", async () => {
    // The first request gets its answer and a GOAWAY; the rest are answered on a new connection.
    const peer = startRawPeer((id, index) =>
      index === 0 ? [...okAnswer(id), goaway(id)] : okAnswer(id)
    );
    const channel = new GrpcChannel("127.0.0.1", peer.port);
    try {
      await channel.unary(INVOKE_METHOD.path, invokeBytes({}));
      await until("the channel to leave READY", () => channel.state !== "ready");
      await channel.unary(INVOKE_METHOD.path, invokeBytes({}));
      await channel.unary(INVOKE_METHOD.path, invokeBytes({}));
      assert.equal(peer.connections, 2);
    } finally {
      channel.close();
      await peer.close();
    }
  });
  await t.step("a connection closed under a call is UNAVAILABLE Connection dropped", async () => {
    let peer: RawPeer | undefined = undefined;
    peer = startRawPeer(() => {
      queueMicrotask(() => void peer!.close());
      return [];
    });
    const channel = new GrpcChannel("127.0.0.1", peer.port);
    try {
      await assert.rejects(
        channel.unary(INVOKE_METHOD.path, invokeBytes({})),
        assertStatus(grpc.status.UNAVAILABLE, "Connection dropped", "sent-unanswered"),
      );
      assert.equal(channel.state, "idle");
    } finally {
      channel.close();
      await peer.close();
    }
  });
  await t.step("a silent peer (its node cut off): a missed PING drops the call", async () => {
    // The peer takes the request and then says nothing, not even a PING ACK, like a host whose
    // link went down: the call must end as sent-but-unanswered, long before any deadline.
    const peer = startRawPeer(() => []);
    const channel = new GrpcChannel("127.0.0.1", peer.port, {
      keepaliveMs: 100,
      keepaliveTimeoutMs: 200,
    });
    try {
      await assert.rejects(
        channel.unary(INVOKE_METHOD.path, invokeBytes({})),
        (error: unknown) => {
          assert.ok(error instanceof GrpcCallError);
          assert.equal(error.code, grpc.status.UNAVAILABLE);
          assert.match(error.details, /no answer to PING within 200 ms/);
          return true;
        },
      );
    } finally {
      channel.close();
      await peer.close();
    }
  });
  await t.step("MAX_CONCURRENT_STREAMS 1: calls wait for each other", async () => {
    const peer = startRawPeer((id) => okAnswer(id), [[0x3, 1]]);
    const channel = new GrpcChannel("127.0.0.1", peer.port);
    try {
      await channel.ready(2_000);
      await Promise.all(
        Array.from({ length: 5 }, () => channel.unary(INVOKE_METHOD.path, invokeBytes({}))),
      );
      assert.equal(peer.connections, 1);
      assert.equal(peer.maxRequestsPerRead, 1);
    } finally {
      channel.close();
      await peer.close();
    }
  });
});
