import assert from "node:assert/strict";
import {
  ChunkedBodyScanner,
  headAddition,
  type HeadResult,
  parseHead,
  PEER_HEADER,
} from "./request_framing.ts";

const PEER = headAddition({ [PEER_HEADER]: "p" });
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

function head(result: HeadResult) {
  assert.equal(result.kind, "head", JSON.stringify(result));
  return result as Extract<HeadResult, { kind: "head" }>;
}

Deno.test("parseHead() finds the head, its body framing, and replaces the peer header", () => {
  const raw = "\r\nPOST /mcp HTTP/1.1\r\nHost: x\r\nX-Router-Peer: 6.6.6.6\r\n" +
    "Content-Length: 5\r\n\r\nhello";
  const result = head(parseHead(bytes(raw), headAddition({ [PEER_HEADER]: "10.0.0.7" }), 65536));
  assert.equal(result.consumed, raw.length - 5);
  assert.deepEqual(result.body, { kind: "length", length: 5 });
  assert.equal(
    text(result.head),
    `POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n${PEER_HEADER}: 10.0.0.7\r\n\r\n`,
  );
  assert.deepEqual(
    head(parseHead(bytes("GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n"), PEER, 65536)).body,
    { kind: "none" },
  );
  assert.deepEqual(
    head(parseHead(bytes("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"), PEER, 65536))
      .body,
    { kind: "chunked" },
  );
});

Deno.test("parseHead() waits for more, and refuses what a peer could read differently", async (t) => {
  assert.equal(
    parseHead(bytes("POST /mcp HTTP/1.1\r\nHost: x\r\n"), PEER, 65536).kind,
    "incomplete",
  );
  const big = parseHead(bytes("GET / HTTP/1.1\r\nX: " + "a".repeat(200)), PEER, 100);
  assert.deepEqual(big, {
    kind: "error",
    status: 431,
    message: "Request header block is too large",
  });
  const cases: Record<string, string> = {
    "bare LF": "GET / HTTP/1.1\nHost: x\r\n\r\n",
    "bare LF inside a field": "GET / HTTP/1.1\r\nX: a\nContent-Length: 5\r\n\r\n",
    "bare CR": "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
    "line folding": "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
    "two lengths": "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    "a signed length": "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
    "length and chunked":
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "gzip, chunked": "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "chunked on HTTP/1.0": "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/2 preface": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "space before colon": "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
  };
  for (const [name, raw] of Object.entries(cases)) {
    await t.step(name, () => {
      const result = parseHead(bytes(raw), PEER, 65536);
      assert.equal(result.kind, "error", name);
      assert.equal((result as { status: number }).status, 400);
    });
  }
});

Deno.test("ChunkedBodyScanner finds the end of a chunked body fed in pieces", () => {
  const body = "5;ext=1\r\nhello\r\n1A\r\n" + "x".repeat(26) + "\r\n0\r\nTrailer: t\r\n\r\n";
  const next = "GET / HTTP/1.1\r\n";
  const all = bytes(body + next);
  for (const size of [1, 3, 7, all.length]) {
    const scanner = new ChunkedBodyScanner();
    let used = 0;
    for (let at = 0; at < all.length && !scanner.done; at += size) {
      const piece = all.subarray(at, Math.min(all.length, at + size));
      const taken = scanner.scan(piece);
      assert.equal(typeof taken, "number");
      used += taken as number;
    }
    assert.ok(scanner.done);
    assert.equal(used, body.length, `pieces of ${size}`);
  }
});

Deno.test("ChunkedBodyScanner refuses malformed bodies", () => {
  for (const bad of ["zz\r\n", "5\r\nhelloXX", "5\nhello", " 5\r\n", "1234567890123\r\n"]) {
    assert.equal(typeof new ChunkedBodyScanner().scan(bytes(bad)), "string", JSON.stringify(bad));
  }
});
