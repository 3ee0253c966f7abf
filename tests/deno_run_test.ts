/**
 * services/runtime/deno_run.sh, the Deno images' entry point, with a made-up route table and a
 * `deno` that prints its arguments: what `--allow-net` it builds, and what it refuses.
 */
import assert from "node:assert/strict";

const SCRIPT = new URL("../services/runtime/deno_run.sh", import.meta.url).pathname;

// Columns of /proc/net/route; addresses are little-endian hex.
const HEADER = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT";
function route(iface: string, destination: string, mask: string): string {
  return `${iface}\t${destination}\t00000000\t0001\t0\t0\t0\t${mask}\t0\t0\t0`;
}

async function launch(routes: string[], env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "deno-run-test-" });
  try {
    await Deno.writeTextFile(`${dir}/route`, [HEADER, ...routes].join("\n") + "\n");
    await Deno.writeTextFile(`${dir}/deno`, '#!/bin/sh\nprintf "%s\\n" "$@"\n', { mode: 0o755 });
    const output = await new Deno.Command("bash", {
      args: [SCRIPT, "--allow-env", "program.ts"],
      env: { PATH: `${dir}:/usr/bin:/bin`, DENO_RUN_ROUTE_TABLE: `${dir}/route`, ...env },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return {
      code: output.code,
      args: decode(output.stdout).split("\n"),
      stderr: decode(output.stderr),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("deno_run.sh allows Consul and every address of the overlay, not the egress network", async () => {
  const result = await launch([
    // docker_gwbridge: the default route and its subnet (172.18.0.0/16).
    route("eth1", "00000000", "00000000"),
    route("eth1", "000012AC", "0000FFFF"),
    // The overlay: 10.0.1.0/24.
    route("eth0", "0001000A", "00FFFFFF"),
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.args.slice(0, 2), ["run", "--cached-only"]);
  const allowNet = result.args[2];
  assert.match(
    allowNet,
    /^--allow-net=0\.0\.0\.0,127\.0\.0\.1,consul:8500,10\.0\.1\.1,10\.0\.1\.2,/,
  );
  const entries = allowNet.slice("--allow-net=".length).split(",");
  assert.equal(entries.length, 3 + 254);
  assert.equal(entries.at(-1), "10.0.1.254");
  assert.ok(!entries.some((entry) => entry.startsWith("172.")), "nothing of docker_gwbridge");
  assert.deepEqual(result.args.slice(3, 5), ["--allow-env", "program.ts"]);
});

Deno.test("deno_run.sh takes DENO_NET_HOSTS, unix sockets included, and refuses anything else", async () => {
  const hosts = "consul:8500,prometheus:9090,unix:/run/lb/master.sock";
  const ok = await launch([route("eth0", "00000000", "00000000")], { DENO_NET_HOSTS: hosts });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.args[2], `--allow-net=0.0.0.0,127.0.0.1,${hosts}`);

  const bad = await launch([], { DENO_NET_HOSTS: "consul:8500 --allow-all" });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /DENO_NET_HOSTS must be host\[:port\] or unix:<path> entries/);
});

Deno.test("deno_run.sh refuses a network larger than a /20", async () => {
  const result = await launch([
    route("eth1", "00000000", "00000000"),
    route("eth0", "0000000A", "0000FFFF"),
  ]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /the network on eth0 holds 65536 addresses/);
});
