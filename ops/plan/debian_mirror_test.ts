import assert from "node:assert/strict";
import { findDebianMirror } from "./debian_mirror.ts";

const MIRROR = "http://mirror.invalid/debian";

Deno.test("findDebianMirror() reads deb822 sources and skips security", () => {
  const sources = [
    "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n",
    `Types: deb\nURIs: ${MIRROR}\nSuites: bookworm\n`,
  ];
  assert.equal(findDebianMirror(sources), MIRROR);
});

Deno.test("findDebianMirror() falls back to sources.list, then to nothing", () => {
  assert.equal(findDebianMirror([], `# x\ndeb [arch=amd64] ${MIRROR} bookworm main\n`), MIRROR);
  assert.equal(findDebianMirror([], ""), undefined);
});
