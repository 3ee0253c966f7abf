import assert from "node:assert/strict";

const GOLDEN_DIR = new URL("../ops/render/testdata/haproxy/", import.meta.url).pathname;

Deno.test("haproxy -c accepts every golden config", async (t) => {
  const names = [];
  for await (const entry of Deno.readDir(GOLDEN_DIR)) {
    if (entry.name.endsWith(".cfg")) names.push(entry.name);
  }
  assert.ok(names.length >= 6, `expected the golden configs in "${GOLDEN_DIR}"`);
  for (const name of names.sort()) {
    await t.step(name, async () => {
      const output = await new Deno.Command("haproxy", {
        args: ["-c", "-f", `${GOLDEN_DIR}${name}`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(output.stdout) +
        new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, text);
      assert.doesNotMatch(text, /\[WARNING\]/, text);
    });
  }
});
