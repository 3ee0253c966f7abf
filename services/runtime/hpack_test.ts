import assert from "node:assert/strict";
import { encodeHeaders, HpackDecoder, HpackError, huffmanDecode } from "./hpack.ts";

function hex(text: string): Uint8Array {
  const digits = text.replaceAll(" ", "");
  return new Uint8Array(
    Array.from(
      { length: digits.length / 2 },
      (_, i) => parseInt(digits.slice(i * 2, i * 2 + 2), 16),
    ),
  );
}

const REQUESTS = [
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
  [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ],
  [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ],
];

Deno.test("HpackDecoder decodes the requests of RFC 7541 C.3 and C.4 with one table each", async (t) => {
  const cases: [string, string[]][] = [
    ["C.3 (plain literals)", [
      "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]],
    ["C.4 (Huffman literals)", [
      "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]],
  ];
  for (const [label, blocks] of cases) {
    await t.step(label, () => {
      const decoder = new HpackDecoder();
      blocks.forEach((block, i) => assert.deepEqual(decoder.decode(hex(block)), REQUESTS[i]));
    });
  }
});

Deno.test("huffmanDecode() rejects padding that is not a prefix of EOS", () => {
  assert.equal(huffmanDecode(hex("a8eb 1064 9cbf")), "no-cache");
  assert.throws(() => huffmanDecode(hex("a8eb 1064 9cbe")), HpackError);
  assert.throws(() => huffmanDecode(hex("ffff ffff")), HpackError);
});

Deno.test("HpackDecoder evicts the oldest entries and obeys size updates", async (t) => {
  await t.step("an insert over the limit evicts the oldest entry", () => {
    // Each entry is 32 + 1 + 1 = 34 bytes; a 68-byte table holds two.
    const decoder = new HpackDecoder(68);
    decoder.decode(hex("4001 6101 31 4001 6201 32 4001 6301 33"));
    assert.deepEqual(decoder.decode(hex("be bf")), [["c", "3"], ["b", "2"]]);
    assert.throws(() => decoder.decode(hex("c0")), HpackError);
  });
  await t.step("a size update to 0 empties the table", () => {
    const decoder = new HpackDecoder();
    decoder.decode(hex("4001 6101 31"));
    assert.deepEqual(decoder.decode(hex("be")), [["a", "1"]]);
    assert.throws(() => decoder.decode(hex("20 be")), HpackError);
  });
  await t.step("a size update over the allowed size is an error", () => {
    assert.throws(() => new HpackDecoder(4096).decode(hex("3fe2 1f")), HpackError);
  });
  await t.step("a size update after a field is an error", () => {
    assert.throws(() => new HpackDecoder().decode(hex("82 20")), HpackError);
  });
});

Deno.test("encodeHeaders() output decodes to the same fields", () => {
  const fields: [string, string][] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/platform.v1.Capability/Invoke"],
    [":authority", "127.0.0.1:50051"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-timeout", "59999m"],
    ["x-long", "v".repeat(300)],
  ];
  const block = encodeHeaders(fields);
  assert.equal(block[0], 0x83);
  assert.deepEqual(new HpackDecoder().decode(block), fields);
  assert.throws(() => encodeHeaders([["x", "\u2603"]]), RangeError);
});
