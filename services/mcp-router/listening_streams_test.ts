import assert from "node:assert/strict";
import { isRefusal, type Refusal } from "./client_limits.ts";
import { ListeningStreams, type StreamSlot, whenBodyEnds } from "./listening_streams.ts";

const SETTINGS = {
  maxStreams: 3,
  maxStreamsPerSession: 2,
  streamIdleMs: 1000,
  streamMaxAgeMs: 5000,
};

function slot(value: StreamSlot | Refusal): StreamSlot {
  assert.ok(!isRefusal(value), `refused: ${JSON.stringify(value)}`);
  return value;
}

/** A body the test writes to: `send` enqueues an event, the returned stream is what is wrapped. */
function source() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start: (c) => void (controller = c),
    cancel: () => void (cancelled = true),
  });
  return {
    body,
    send: (text: string) => controller.enqueue(new TextEncoder().encode(text)),
    cancelled: () => cancelled,
  };
}

Deno.test("ListeningStreams caps streams per session (429) and in total (503)", () => {
  const streams = new ListeningStreams(SETTINGS);
  const a1 = slot(streams.reserve("a", () => {}));
  slot(streams.reserve("a", () => {}));
  const perSession = streams.reserve("a", () => {}) as Refusal;
  assert.equal(perSession.status, 429);
  assert.equal(perSession.reason, "session_streams");
  slot(streams.reserve(undefined, () => {}));
  const total = streams.reserve("b", () => {}) as Refusal;
  assert.equal(total.status, 503);
  assert.equal(total.reason, "router_streams");
  assert.ok(total.retryAfterSeconds >= 1);
  a1.release();
  a1.release();
  assert.equal(streams.size, 2);
  slot(streams.reserve("b", () => {}));
});

Deno.test("ListeningStreams closes idle and old streams; heartbeats do not count as messages", async () => {
  let now = 0;
  const streams = new ListeningStreams(SETTINGS, () => now);
  let ended = 0;
  const quiet = source();
  const busy = source();
  const quietBody = slot(streams.reserve("a", () => ended++)).wrap(quiet.body);
  const busyBody = slot(streams.reserve("b", () => ended++)).wrap(busy.body);
  const quietReader = quietBody.getReader();
  const busyReader = busyBody.getReader();

  quiet.send(": keepalive\n\n");
  await quietReader.read();
  now = 900;
  busy.send("event: message\ndata: {}\n\n");
  await busyReader.read();
  now = 1000;
  assert.equal(streams.sweep(), 1, "the quiet one: its heartbeat was not a message");
  assert.equal((await quietReader.read()).done, true);
  assert.ok(quiet.cancelled());
  assert.equal(ended, 1);

  now = 1800;
  busy.send("event: message\ndata: {}\n\n");
  await busyReader.read();
  now = 5000;
  assert.equal(streams.sweep(), 1, "the busy one, at its maximum age");
  assert.equal((await busyReader.read()).done, true);
  assert.equal(ended, 2);
  assert.equal(streams.size, 0);
});

Deno.test("ListeningStreams frees a slot when the client cancels, and closeAll() ends the rest", async () => {
  const streams = new ListeningStreams(SETTINGS);
  const one = source();
  const two = source();
  const first = slot(streams.reserve("a", () => {})).wrap(one.body);
  slot(streams.reserve("b", () => {})).wrap(two.body);
  await first.cancel();
  assert.ok(one.cancelled());
  assert.equal(streams.size, 1);
  streams.closeAll();
  assert.ok(two.cancelled());
  assert.equal(streams.size, 0);
});

Deno.test("whenBodyEnds() passes the body through and reports its end once", async () => {
  let ended = 0;
  const body = new Response("a long answer").body!;
  assert.equal(await new Response(whenBodyEnds(body, () => ended++)).text(), "a long answer");
  assert.equal(ended, 1);
  const cancelled = whenBodyEnds(source().body, () => ended++);
  await cancelled.cancel();
  assert.equal(ended, 2);
});
