import assert from "node:assert/strict";
import { ChunkedBodyScanner, type HeadResult, parseHead } from "./request_framing.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

function head(result: HeadResult) {
  assert.equal(result.kind, "head", JSON.stringify(result));
  return result as Extract<HeadResult, { kind: "head" }>;
}

Deno.test("parseHead() finds the head, its fields and its body framing", () => {
  const raw = "\r\nPOST /mcp?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-A:  a b\t\r\n" +
    "Content-Length: 5\r\n\r\nhello";
  const result = head(parseHead(bytes(raw), 65536));
  assert.equal(result.consumed, raw.length - 5);
  assert.equal(result.method, "POST");
  assert.equal(result.target, "/mcp?x=1");
  assert.equal(result.host, "example.com:8080");
  assert.deepEqual(result.fields, [
    ["Host", "example.com:8080"],
    ["X-A", "a b"],
    ["Content-Length", "5"],
  ]);
  assert.deepEqual(result.body, { kind: "length", length: 5 });
  assert.equal(result.keepAlive, true);
  assert.equal(result.expectContinue, false);
  assert.deepEqual(
    head(parseHead(bytes("GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n"), 65536)).body,
    { kind: "none" },
  );
  assert.deepEqual(
    head(
      parseHead(bytes("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"), 65536),
    )
      .body,
    { kind: "chunked" },
  );
  assert.equal(
    head(parseHead(bytes("GET http://h/mcp HTTP/1.1\r\nHost: h\r\n\r\n"), 65536)).target,
    "http://h/mcp",
  );
  // obs-text in a value survives as Latin-1 (RFC 9110 §5.5).
  assert.deepEqual(
    head(
      parseHead(
        new Uint8Array([...bytes("GET / HTTP/1.1\r\nHost: x\r\nX: "), 0xe9, 13, 10, 13, 10]),
        65536,
      ),
    )
      .fields[1],
    ["X", "\u00e9"],
  );
});

Deno.test("parseHead() keeps connections as RFC 9112 §9.3 says", async (t) => {
  const cases: [string, boolean][] = [
    ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", true],
    ["GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false],
    ["GET / HTTP/1.1\r\nHost: x\r\nConnection: TE, Close\r\n\r\n", false],
    ["GET / HTTP/1.0\r\n\r\n", false],
    ["GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true],
    ["GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false],
  ];
  for (const [raw, keepAlive] of cases) {
    await t.step(JSON.stringify(raw), () => {
      assert.equal(head(parseHead(bytes(raw), 65536)).keepAlive, keepAlive);
    });
  }
});

Deno.test("parseHead() reads Expect: 100-continue, refuses others, ignores it on HTTP/1.0", () => {
  const base = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n";
  assert.equal(
    head(parseHead(bytes(base + "Expect: 100-Continue\r\n\r\n"), 65536)).expectContinue,
    true,
  );
  assert.deepEqual(parseHead(bytes(base + "Expect: fly\r\n\r\n"), 65536), {
    kind: "error",
    status: 417,
    message: "Unsupported expectation",
  });
  assert.equal(
    head(parseHead(bytes("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), 65536))
      .expectContinue,
    false,
  );
});

Deno.test("parseHead() waits for a head split at any byte, whatever comes in between", () => {
  const raw = bytes("\r\nPOST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
  const headEnd = raw.length - 2;
  for (let at = 0; at < headEnd; at++) {
    assert.equal(parseHead(raw.subarray(0, at), 65536).kind, "incomplete", `at ${at}`);
  }
  assert.equal(head(parseHead(raw.subarray(0, headEnd), 65536)).consumed, headEnd);
});

Deno.test("parseHead() waits for more, and refuses what a peer could read differently", async (t) => {
  assert.equal(parseHead(bytes("POST /mcp HTTP/1.1\r\nHost: x\r\n"), 65536).kind, "incomplete");
  const big = parseHead(bytes("GET / HTTP/1.1\r\nX: " + "a".repeat(200)), 100);
  assert.deepEqual(big, {
    kind: "error",
    status: 431,
    message: "Request header block is too large",
  });
  const cases: Record<string, string> = {
    "bare LF": "GET / HTTP/1.1\nHost: x\r\n\r\n",
    "bare LF ending the head": "GET / HTTP/1.1\r\nHost: x\n\n",
    "bare LF, head not complete": "GET / HTTP/1.1\r\nHost: x\n",
    "bare LF inside a field": "GET / HTTP/1.1\r\nHost: x\r\nX: a\nContent-Length: 5\r\n\r\n",
    "bare CR": "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    "line folding": "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    "NUL in a value": "GET / HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n",
    "two lengths": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    "a list of lengths": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
    "a signed length": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
    "a hex length": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n",
    "length and chunked":
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "chunked and length":
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    "chunked twice":
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    "gzip, chunked": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "chunked on HTTP/1.0": "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/2 preface": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "HTTP/1.2": "GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    "space before colon": "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "no Host on HTTP/1.1": "GET / HTTP/1.1\r\n\r\n",
    "two Hosts": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "a Host with a slash": "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
    "authority-form": "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    "asterisk-form for GET": "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    "two spaces": "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  for (const [name, raw] of Object.entries(cases)) {
    await t.step(name, () => {
      const result = parseHead(bytes(raw), 65536);
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

Deno.test("ChunkedBodyScanner gives the data without sizes, extensions or trailers", () => {
  const body = '5;name=value;q="a b"\r\nhello\r\n3\r\n, w\r\n0;last\r\nX-T: 1\r\nY-T: 2\r\n\r\n';
  const all = bytes(body);
  for (let size = 1; size <= all.length; size++) {
    const scanner = new ChunkedBodyScanner();
    let data = "";
    for (let at = 0; at < all.length && !scanner.done; at += size) {
      const piece = all.subarray(at, Math.min(all.length, at + size));
      const taken = scanner.scan(piece, 0, (start, end) => {
        data += new TextDecoder().decode(piece.subarray(start, end));
      });
      assert.equal(typeof taken, "number");
    }
    assert.ok(scanner.done);
    assert.equal(data, "hello, w", `pieces of ${size}`);
  }
  assert.equal(
    typeof new ChunkedBodyScanner().scan(bytes("0\r\nX: a\r\n b\r\n\r\n")),
    "string",
    "a folded trailer",
  );
});
