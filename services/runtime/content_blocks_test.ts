import assert from "node:assert/strict";
import {
  fromContentMessage,
  fromResourceContentsMessage,
  type McpContentBlock,
  toContentMessage,
  toResourceContentsMessage,
} from "./content_blocks.ts";

const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

Deno.test("content blocks survive the trip through the contract", async (t) => {
  const blocks: McpContentBlock[] = [
    { type: "text", text: "hello" },
    { type: "image", data: PNG, mimeType: "image/png" },
    { type: "audio", data: "UklGRiYAAABXQVZF", mimeType: "audio/wav" },
    { type: "resource", resource: { uri: "test://a", mimeType: "text/plain", text: "body" } },
    { type: "resource", resource: { uri: "test://b", blob: PNG } },
    { type: "resource_link", uri: "test://c", name: "c", mimeType: "text/plain" },
    { type: "text", text: "x", annotations: { audience: ["user"], priority: 0.5 } },
  ];
  for (const block of blocks) {
    await t.step(
      block.type,
      () => assert.deepEqual(fromContentMessage(toContentMessage(block)), block),
    );
  }
});

Deno.test("fromContentMessage() refuses hostile blocks with a reason", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["no body", {}, /no body/],
    ["text not a string", { text: { text: 5 } }, /not a string/],
    ["image without bytes", { image: { data: "abc", mimeType: "image/png" } }, /no bytes/],
    ["image without type", { image: { data: new Uint8Array(1), mimeType: "" } }, /no mimeType/],
    ["annotations not JSON", { text: { text: "a" }, annotationsJson: "{" }, /not JSON/],
    ["annotations an array", { text: { text: "a" }, annotationsJson: "[]" }, /not a JSON object/],
    ["link without name", { resourceLink: { uri: "a", name: "" } }, /without a uri or name/],
  ];
  for (const [name, message, pattern] of cases) {
    await t.step(name, () => assert.throws(() => fromContentMessage(message as never), pattern));
  }
  assert.throws(() => fromResourceContentsMessage({ uri: "", mimeType: "" }), /without a uri/);
});

Deno.test("toResourceContentsMessage() carries blobs as bytes", () => {
  const message = toResourceContentsMessage({ uri: "test://b", mimeType: "image/png", blob: PNG });
  assert.ok(message.blob instanceof Uint8Array);
  assert.equal(message.blob.length, 70);
});
