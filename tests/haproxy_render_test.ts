import assert from "node:assert/strict";
import { freePort, startConsulDev } from "./helpers/consul_dev.ts";
import { registerInstance } from "./helpers/lb_backend.ts";

const GOLDEN_DIR = new URL("../haproxy/testdata/", import.meta.url).pathname;

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

async function runLb(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../ops/main.ts", import.meta.url).pathname,
      "lb",
      ...args,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("lb render with Consul unreachable exits 1, says why and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lb-render-test-" });
  try {
    const port = freePort();
    const result = await runLb([
      "render",
      "--consul",
      `http://127.0.0.1:${port}`,
      "--out",
      `${dir}/h.cfg`,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: Cannot reach Consul at "http:\/\/127\.0\.0\.1:\d+"/);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lb render writes a config haproxy -c accepts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lb-render-test-" });
  const consul = await startConsulDev();
  try {
    await registerInstance(consul.url, "router-a", 9001);
    const result = await runLb(["render", "--out", `${dir}/h.cfg`], {
      CONSUL_HTTP_ADDR: consul.url,
      LB_RUN_DIR: dir,
      LB_BIND_ADDR: "127.0.0.1",
    });
    assert.equal(result.code, 0, result.stderr);
    const text = await Deno.readTextFile(`${dir}/h.cfg`);
    assert.match(text, /server r1 127\.0\.0\.1:9001 weight 1 {2}# router-a/);
    const check = await new Deno.Command("haproxy", {
      args: ["-c", "-f", `${dir}/h.cfg`],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
  } finally {
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
