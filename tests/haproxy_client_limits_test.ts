/**
 * Per-client limits of the MCP front door (`LB_CLIENT_MAX_CONN`, `LB_CLIENT_MAX_RATE`) with the real
 * `lb sync` CLI, real HAProxy and real Consul: over a limit, a client gets 429, and 0 lifts it.
 */
import assert from "node:assert/strict";
import { freePort, startConsulDev } from "./helpers/consul_dev.ts";
import { socketCommand } from "../haproxy/runtime_api.ts";
import { eventually } from "./helpers/poll.ts";
import { spawnDeno } from "./helpers/service_process.ts";

/** One HTTP/1.1 request on an open connection; returns the status code of the answer. */
async function request(conn: Deno.Conn): Promise<number> {
  await conn.write(new TextEncoder().encode("GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n"));
  const buffer = new Uint8Array(4096);
  const read = await conn.read(buffer);
  assert.ok(read !== null, "HAProxy closed the connection");
  const head = new TextDecoder().decode(buffer.subarray(0, read));
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
}

/** Runs `lb sync` with `env`, waits for the MCP port, runs `body` with that port. */
async function withLbSync(
  env: Record<string, string>,
  body: (port: number) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lb-client-limits-test-" });
  const consul = await startConsulDev();
  const port = freePort();
  const lb = spawnDeno(["ops/main.ts", "lb", "sync"], {
    env: {
      CONSUL_HTTP_ADDR: consul.url,
      LB_RUN_DIR: `${dir}/run`,
      LB_BIND_ADDR: "127.0.0.1",
      LB_MCP_PORT: String(port),
      LB_STATS_PORT: String(freePort()),
      LB_METRICS_PORT: String(freePort()),
      LB_MIN_SLOTS: "2",
      LB_HARD_STOP_AFTER: "1s",
      ...env,
    },
  });
  try {
    await eventually("HAProxy's MCP frontend to answer", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        return await request(conn);
      } finally {
        conn.close();
      }
    }, (status) => status > 0);
    // The probes above count in the per-client table until HAProxy has seen them close: a limit
    // test starts only once this client holds no connection there.
    await eventually(
      "the probes to leave HAProxy's per-client table",
      () => socketCommand(`${dir}/run/admin.sock`, "show table mcp"),
      (table) => !/conn_cur=[1-9]/.test(table),
    );
    await body(port);
  } finally {
    await lb.stop("SIGTERM");
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("HAProxy answers 429 to a client over its connection limit, and LB_CLIENT_MAX_CONN=0 lifts it", async (t) => {
  await t.step("limit 2: the third open connection is refused", async () => {
    await withLbSync({ LB_CLIENT_MAX_CONN: "2", LB_CLIENT_MAX_RATE: "0" }, async (port) => {
      const conns = [
        await Deno.connect({ hostname: "127.0.0.1", port }),
        await Deno.connect({ hostname: "127.0.0.1", port }),
      ];
      try {
        // No router is registered: a request within the limits reaches the empty backend (503).
        assert.equal(await request(conns[0]), 503);
        assert.equal(await request(conns[1]), 503);
        conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        assert.equal(await request(conns[2]), 429);
      } finally {
        for (const conn of conns) conn.close();
      }
    });
  });
  await t.step("no limit: ten open connections are served", async () => {
    await withLbSync({ LB_CLIENT_MAX_CONN: "0", LB_CLIENT_MAX_RATE: "0" }, async (port) => {
      const conns = await Promise.all(
        Array.from({ length: 10 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
      );
      try {
        for (const conn of conns) assert.equal(await request(conn), 503);
      } finally {
        for (const conn of conns) conn.close();
      }
    });
  });
});

Deno.test("HAProxy answers 429 to a client over its request rate", async () => {
  // 1 request/s over HAProxy's 10 s window: the 11th request within it is refused.
  await withLbSync({ LB_CLIENT_MAX_CONN: "0", LB_CLIENT_MAX_RATE: "1" }, async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push(await request(conn));
      assert.ok(statuses.includes(503), statuses.join(","));
      assert.equal(statuses.at(-1), 429, statuses.join(","));
    } finally {
      conn.close();
    }
  });
});
