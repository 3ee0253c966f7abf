import assert from "node:assert/strict";
import { createLogger } from "../runtime/logger.ts";
import { eventually } from "../../tests/helpers/poll.ts";
import {
  ConnectionGuard,
  type ConnectionGuardOptions,
  type GuardedHandler,
} from "./connection_guard.ts";

// The guard against a raw TCP peer (Deno.connect writing bytes), as RFC 9112 describes the edges.

const MAX_BODY = 1024;
const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();

/** What the echo handler saw, as it answers it. */
interface Seen {
  method: string;
  url: string;
  peer: string;
  body: string;
  headers: Record<string, string>;
}

const echo: GuardedHandler = async (request, peer) => {
  // The router's own check (http_guard.ts): a body over the limit is refused unread.
  if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY) {
    return Response.json({ error: "too large" }, { status: 413 });
  }
  const seen: Seen = {
    method: request.method,
    url: request.url,
    peer,
    body: request.body === null ? "" : await request.text(),
    headers: Object.fromEntries(request.headers),
  };
  return Response.json(seen);
};

async function withGuard(
  handler: GuardedHandler,
  run: (port: number, guard: ConnectionGuard) => Promise<void>,
  options: Partial<ConnectionGuardOptions> = {},
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const guard = new ConnectionGuard({
    handler,
    headerTimeoutMs: 10_000,
    bodyTimeoutMs: 30_000,
    idleTimeoutMs: 300_000,
    maxConnections: 64,
    maxBodyBytes: MAX_BODY,
    logger: createLogger({ write: () => {} }),
    ...options,
  });
  guard.serve(listener);
  try {
    await run(listener.addr.port, guard);
  } finally {
    await guard.close();
  }
}

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
  /** The chunk-size lines of a chunked body, extensions included. */
  chunks: number;
}

/** A client that writes raw bytes and reads answers the way RFC 9112 frames them. */
class RawClient {
  readonly conn: Deno.TcpConn;
  #buffer = "";
  #ended = false;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  static async open(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(data: string | Uint8Array): Promise<void> {
    let bytes = typeof data === "string" ? encoder.encode(data) : data;
    while (bytes.length > 0) bytes = bytes.subarray(await this.conn.write(bytes));
  }

  /** Reads until `done` holds for the bytes seen, or the connection ends; false if it ended. */
  async #fill(done: () => boolean): Promise<boolean> {
    const scratch = new Uint8Array(64 * 1024);
    while (!done()) {
      if (this.#ended) return false;
      let n: number | null;
      try {
        n = await this.conn.read(scratch);
      } catch {
        n = null;
      }
      if (n === null) {
        this.#ended = true;
        return done();
      }
      this.#buffer += latin1.decode(scratch.subarray(0, n));
    }
    return true;
  }

  async #line(): Promise<string> {
    assert.ok(await this.#fill(() => this.#buffer.includes("\r\n")), "connection ended early");
    const at = this.#buffer.indexOf("\r\n");
    const line = this.#buffer.slice(0, at);
    this.#buffer = this.#buffer.slice(at + 2);
    return line;
  }

  async #bytes(n: number): Promise<string> {
    assert.ok(await this.#fill(() => this.#buffer.length >= n), "connection ended early");
    const taken = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return taken;
  }

  /** Reads one response head and its body; `head` for a HEAD request (no body). */
  async response(options: { head?: boolean } = {}): Promise<RawResponse> {
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(await this.#line());
    assert.ok(status, "a status line");
    const headers = new Map<string, string>();
    for (let line = await this.#line(); line !== ""; line = await this.#line()) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      assert.ok(!headers.has(name), `one ${name} field`);
      headers.set(name, line.slice(colon + 1).trim());
    }
    const code = Number(status[1]);
    let body = "";
    let chunks = 0;
    if (options.head || code === 204 || code === 304 || code < 200) {
      // No body.
    } else if (headers.get("transfer-encoding") === "chunked") {
      assert.ok(!headers.has("content-length"), "not both framings");
      for (;;) {
        const size = parseInt(await this.#line(), 16);
        if (size === 0) {
          assert.equal(await this.#line(), "");
          break;
        }
        chunks++;
        body += await this.#bytes(size);
        assert.equal(await this.#line(), "");
      }
    } else if (headers.has("content-length")) {
      body = await this.#bytes(Number(headers.get("content-length")));
    } else {
      await this.#fill(() => false);
      body = this.#buffer;
      this.#buffer = "";
    }
    return { status: code, headers, body, chunks };
  }

  /** Whether the server closed the connection (after any bytes still buffered). */
  async closed(): Promise<boolean> {
    await this.#fill(() => false);
    return this.#ended;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

function seen(response: RawResponse): Seen {
  assert.equal(response.status, 200, response.body);
  return JSON.parse(response.body);
}

Deno.test("ConnectionGuard serves keep-alive requests in process, framed by Content-Length", async () => {
  await withGuard(echo, async (port) => {
    const client = await RawClient.open(port);
    try {
      await client.send(
        "POST /mcp?a=1 HTTP/1.1\r\nHost: example.test:8080\r\nContent-Length: 5\r\n" +
          "X-Router-Peer: 6.6.6.6\r\n\r\nhello",
      );
      const first = await client.response();
      assert.equal(first.headers.get("content-type"), "application/json");
      assert.ok(first.headers.has("date"));
      assert.equal(first.headers.get("connection"), undefined);
      const body = seen(first);
      assert.equal(body.method, "POST");
      assert.equal(body.url, "http://example.test:8080/mcp?a=1");
      // The source address comes from the connection, never from a client's header.
      assert.equal(body.peer, "127.0.0.1");
      assert.equal(body.body, "hello");
      await client.send("GET /other HTTP/1.1\r\nHost: h\r\n\r\n");
      assert.equal(seen(await client.response()).method, "GET");
      await client.send("HEAD /mcp HTTP/1.1\r\nHost: h\r\n\r\n");
      const head = await client.response({ head: true });
      assert.equal(head.status, 200);
      assert.equal(head.body, "");
      await client.send("DELETE /mcp HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
      const last = await client.response();
      assert.equal(seen(last).method, "DELETE");
      assert.equal(last.headers.get("connection"), "close");
      assert.ok(await client.closed());
    } finally {
      client.close();
    }
  });
});

Deno.test("ConnectionGuard reads a head split at every byte boundary", async () => {
  const request = encoder.encode(
    "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
  );
  await withGuard(echo, async (port) => {
    const client = await RawClient.open(port);
    try {
      for (let at = 1; at < request.length; at++) {
        await client.send(request.subarray(0, at));
        await client.send(request.subarray(at));
        assert.equal(seen(await client.response()).body, "{}", `split at ${at}`);
      }
    } finally {
      client.close();
    }
  });
});

Deno.test("ConnectionGuard decodes chunked bodies with extensions and trailers", async () => {
  await withGuard(echo, async (port) => {
    const client = await RawClient.open(port);
    try {
      await client.send(
        "POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
          '5;name="v a"\r\nhello\r\n',
      );
      await client.send("7\r\n, world\r\n0;end\r\nX-Trailer: t\r\n\r\n");
      assert.equal(seen(await client.response()).body, "hello, world");
      // Still in step: the next request on the connection is read where the body ended.
      await client.send("GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
      assert.equal(seen(await client.response()).url, "http://h/next");
    } finally {
      client.close();
    }
  });
});

Deno.test("ConnectionGuard answers pipelined requests in order", async () => {
  const slowFirst: GuardedHandler = async (request, peer, closed) => {
    if (new URL(request.url).pathname === "/1") {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return echo(request, peer, closed);
  };
  await withGuard(slowFirst, async (port) => {
    const client = await RawClient.open(port);
    try {
      await client.send(
        "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n" +
          "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\ntwo" +
          "GET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
      );
      for (const path of ["/1", "/2", "/3"]) {
        assert.equal(new URL(seen(await client.response()).url).pathname, path);
      }
      assert.ok(await client.closed());
    } finally {
      client.close();
    }
  });
});

Deno.test("ConnectionGuard refuses bodies over the limit and closes", async (t) => {
  await withGuard(echo, async (port) => {
    await t.step("Content-Length over the limit: the handler refuses it unread", async () => {
      const client = await RawClient.open(port);
      try {
        await client.send(
          `POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\nxx`,
        );
        const answer = await client.response();
        assert.equal(answer.status, 413);
        assert.equal(answer.headers.get("connection"), "close");
        assert.ok(await client.closed());
      } finally {
        client.close();
      }
    });
    await t.step("a chunked body over the limit: 413", async () => {
      const client = await RawClient.open(port);
      try {
        const size = (MAX_BODY + 1).toString(16);
        await client.send(
          `POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\n` +
            "x".repeat(MAX_BODY + 1) + "\r\n0\r\n\r\n",
        );
        assert.equal((await client.response()).status, 413);
        assert.ok(await client.closed());
      } finally {
        client.close();
      }
    });
  });
});

Deno.test("ConnectionGuard refuses what could smuggle a request, with 400 and a close", async (t) => {
  const cases: Record<string, string> = {
    "Content-Length and Transfer-Encoding":
      "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two Content-Lengths":
      "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "a bad Content-Length": "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\na",
    "Transfer-Encoding other than chunked":
      "POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
    "header folding": "GET /mcp HTTP/1.1\r\nHost: h\r\nX-A: a\r\n  b\r\n\r\n",
    "bare LF": "GET /mcp HTTP/1.1\nHost: h\n\n",
    "a malformed chunk size":
      "POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
    "chunk data without CRLF":
      "POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
    "an HTTP/2 preface": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
  };
  let handled = 0;
  const counting: GuardedHandler = (request, peer, closed) => {
    handled++;
    return echo(request, peer, closed);
  };
  await withGuard(counting, async (port) => {
    for (const [name, raw] of Object.entries(cases)) {
      await t.step(name, async () => {
        const client = await RawClient.open(port);
        try {
          await client.send(raw);
          const answer = await client.response();
          assert.equal(answer.status, 400, answer.body);
          assert.equal(answer.headers.get("connection"), "close");
          assert.ok(await client.closed());
        } finally {
          client.close();
        }
      });
    }
  });
  assert.equal(handled, 0);
});

Deno.test("ConnectionGuard keeps HTTP/1.0 connections only when asked", async () => {
  await withGuard(echo, async (port) => {
    const client = await RawClient.open(port);
    try {
      await client.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      const kept = await client.response();
      assert.equal(kept.headers.get("connection"), "keep-alive");
      assert.equal(new URL(seen(kept).url).pathname, "/a");
      await client.send("GET /b HTTP/1.0\r\n\r\n");
      const last = await client.response();
      assert.equal(last.headers.get("connection"), "close");
      assert.ok(await client.closed());
    } finally {
      client.close();
    }
  });
});

Deno.test("ConnectionGuard answers Expect: 100-continue before the body, 417 to others", async () => {
  await withGuard(echo, async (port) => {
    const client = await RawClient.open(port);
    try {
      await client.send(
        "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
      );
      const interim = await client.response();
      assert.equal(interim.status, 100);
      await client.send("ok");
      assert.equal(seen(await client.response()).body, "ok");
      await client.send("POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: x\r\n\r\n");
      assert.equal((await client.response()).status, 417);
      assert.ok(await client.closed());
    } finally {
      client.close();
    }
  });
});

/** A handler answering an event stream of `events` pieces, each made when the guard asks. */
function streaming(
  events: number,
  size: number,
  state: { pulled: number; cancelled: boolean; aborted: boolean },
): GuardedHandler {
  return (request) => {
    request.signal.addEventListener("abort", () => state.aborted = true);
    const piece = encoder.encode("x".repeat(size - 1) + "\n");
    let sent = 0;
    return Promise.resolve(
      new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent === events) return controller.close();
            sent++;
            state.pulled++;
            controller.enqueue(piece);
          },
          cancel() {
            state.cancelled = true;
          },
        }, { highWaterMark: 0 }),
        { headers: { "content-type": "text/event-stream" } },
      ),
    );
  };
}

Deno.test("ConnectionGuard sends an event stream chunked, and ends it in step", async () => {
  const state = { pulled: 0, cancelled: false, aborted: false };
  await withGuard(streaming(3, 10, state), async (port) => {
    const client = await RawClient.open(port);
    try {
      await client.send("GET /mcp HTTP/1.1\r\nHost: h\r\n\r\n");
      const answer = await client.response();
      assert.equal(answer.headers.get("transfer-encoding"), "chunked");
      assert.equal(answer.body, "xxxxxxxxx\n".repeat(3));
      assert.ok(answer.chunks >= 3);
      await client.send("GET /mcp HTTP/1.0\r\n\r\n");
      const old = await client.response();
      assert.equal(old.headers.get("transfer-encoding"), undefined);
      assert.equal(old.headers.get("connection"), "close");
      assert.equal(old.body, "xxxxxxxxx\n".repeat(3));
    } finally {
      client.close();
    }
  });
});

Deno.test("ConnectionGuard cancels the answer and aborts the signal when the client goes", async () => {
  const state = { pulled: 0, cancelled: false, aborted: false };
  await withGuard(streaming(1_000_000, 100, state), async (port) => {
    const client = await RawClient.open(port);
    await client.send("GET /mcp HTTP/1.1\r\nHost: h\r\n\r\n");
    const first = new Uint8Array(1024);
    assert.ok((await client.conn.read(first)) !== null);
    client.close();
    await eventually("the answer cancelled", () => state, (s) => s.cancelled && s.aborted);
    assert.ok(state.pulled < 1_000_000);
  });
});

Deno.test("ConnectionGuard writes to a slow reader with backpressure", async () => {
  const state = { pulled: 0, cancelled: false, aborted: false };
  const pieces = 4096; // 256 MiB in all, far more than the socket buffers hold.
  const size = 64 * 1024;
  await withGuard(streaming(pieces, size, state), async (port) => {
    const client = await RawClient.open(port);
    try {
      await client.send("GET /mcp HTTP/1.1\r\nHost: h\r\n\r\n");
      // The client reads nothing: the guard stops asking once the socket is full.
      let last = -1;
      await eventually(
        "the guard to stop pulling",
        () => {
          const settled = state.pulled === last;
          last = state.pulled;
          return settled;
        },
        (settled) => settled,
        { intervalMs: 300 },
      );
      assert.ok(state.pulled < 512, `pulled ${state.pulled} pieces of 64 KiB unread`);
      const scratch = new Uint8Array(1024 * 1024);
      let total = 0;
      while (total < 4 * 1024 * 1024) {
        const n = await client.conn.read(scratch);
        assert.ok(n !== null);
        total += n;
      }
      await eventually("the guard to pull again", () => state.pulled, (n) => n > last);
    } finally {
      client.close();
    }
  });
  assert.ok(state.cancelled);
});

Deno.test("ConnectionGuard closes slow heads and bodies with 408, and idle connections", async (t) => {
  const cuts: string[] = [];
  await withGuard(echo, async (port) => {
    await t.step("half a head", async () => {
      const client = await RawClient.open(port);
      try {
        await client.send("POST /mcp HTTP/1.1\r\nHost: h\r\n");
        assert.equal((await client.response()).status, 408);
        assert.ok(await client.closed());
      } finally {
        client.close();
      }
    });
    await t.step("half a body", async () => {
      const client = await RawClient.open(port);
      try {
        await client.send("POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhalf");
        assert.equal((await client.response()).status, 408);
        assert.ok(await client.closed());
      } finally {
        client.close();
      }
    });
    await t.step("idle after an answer", async () => {
      const client = await RawClient.open(port);
      try {
        await client.send("GET /mcp HTTP/1.1\r\nHost: h\r\n\r\n");
        assert.equal((await client.response()).status, 200);
        assert.ok(await client.closed());
      } finally {
        client.close();
      }
    });
  }, {
    headerTimeoutMs: 200,
    bodyTimeoutMs: 200,
    idleTimeoutMs: 400,
    onCut: (reason) => cuts.push(reason),
  });
  assert.deepEqual(cuts, ["header_timeout", "body_timeout", "idle"]);
});

Deno.test("ConnectionGuard closes connections over its cap at once", async () => {
  await withGuard(echo, async (port, guard) => {
    const kept = await RawClient.open(port);
    try {
      await kept.send("GET /mcp HTTP/1.1\r\nHost: h\r\n\r\n");
      assert.equal((await kept.response()).status, 200);
      assert.equal(guard.connections, 1);
      const over = await RawClient.open(port);
      try {
        assert.ok(await over.closed());
      } finally {
        over.close();
      }
    } finally {
      kept.close();
    }
  }, { maxConnections: 1 });
});

Deno.test("ConnectionGuard closes a connection that sends nothing with 408", async () => {
  await withGuard(echo, async (port) => {
    const client = await RawClient.open(port);
    try {
      assert.equal((await client.response()).status, 408);
      assert.ok(await client.closed());
    } finally {
      client.close();
    }
  }, { headerTimeoutMs: 200 });
});

Deno.test("ConnectionGuard.shutdown() closes idle connections and ends busy ones after their answer", async () => {
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  let started = () => {};
  const began = new Promise<void>((resolve) => started = resolve);
  const slow: GuardedHandler = async (request, peer, closed) => {
    if (new URL(request.url).pathname === "/slow") {
      started();
      await held;
    }
    return echo(request, peer, closed);
  };
  await withGuard(slow, async (port, guard) => {
    const idle = await RawClient.open(port);
    const busy = await RawClient.open(port);
    try {
      await idle.send("GET /fast HTTP/1.1\r\nHost: h\r\n\r\n");
      assert.equal((await idle.response()).status, 200);
      await busy.send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
      await began;
      const stopped = guard.shutdown();
      assert.ok(await idle.closed());
      release();
      const answer = await busy.response();
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get("connection"), "close");
      assert.ok(await busy.closed());
      await stopped;
      assert.equal(guard.connections, 0);
    } finally {
      idle.close();
      busy.close();
    }
  });
});

Deno.test("ConnectionGuard aborts a call's signals when its client goes before the answer", async () => {
  let started = () => {};
  const began = new Promise<void>((resolve) => started = resolve);
  const seenAbort = { request: false, connection: false };
  let done = () => {};
  const finished = new Promise<void>((resolve) => done = resolve);
  const waiting: GuardedHandler = async (request, _peer, closed) => {
    started();
    await Promise.all([
      new Promise((resolve) => request.signal.addEventListener("abort", resolve)),
      new Promise((resolve) => closed.addEventListener("abort", resolve)),
    ]);
    seenAbort.request = request.signal.aborted;
    seenAbort.connection = closed.aborted;
    done();
    return new Response(null, { status: 204 });
  };
  await withGuard(waiting, async (port) => {
    const client = await RawClient.open(port);
    await client.send("POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}");
    await began;
    client.close();
    await finished;
  });
  assert.deepEqual(seenAbort, { request: true, connection: true });
});
