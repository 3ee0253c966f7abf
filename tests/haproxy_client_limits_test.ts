/**
 * Limits of the MCP front door with the real `lb sync` CLI, real HAProxy and real Consul (and, where
 * a request must reach a router, a real mcp-router and echo agent): per-client limits keyed by bearer
 * token else source address (429 with `Retry-After`), slow clients (408, nothing forwarded), a
 * saturated router (queue, then 503), and a normal client served while another floods.
 */
import assert from "node:assert/strict";
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { delay } from "../services/runtime/delay.ts";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { socketCommand } from "../haproxy/runtime_api.ts";
import { eventually } from "./helpers/poll.ts";
import { spawnLbSync, startService } from "./helpers/service_process.ts";
import { startRouter } from "./router_harness.ts";

const TOKEN_A = "client-a-token-0123456789";
const TOKEN_B = "client-b-token-9876543210";
const MAX_FLOOD_SECONDS = 20;

/** An answer read from a raw connection: status line and headers (the body is read and dropped). */
interface RawAnswer {
  status: number;
  headers: Map<string, string>;
}

/** Reads one HTTP/1.1 answer (headers, then a `Content-Length` body); null when the peer closed. */
async function readAnswer(conn: Deno.Conn): Promise<RawAnswer | null> {
  let bytes: Uint8Array = new Uint8Array(0);
  const buffer = new Uint8Array(8192);
  let headEnd = -1;
  for (let reads = 0; headEnd < 0 && reads < 1000; reads++) {
    const read = await conn.read(buffer);
    if (read === null) return null;
    bytes = concat(bytes, buffer.subarray(0, read));
    headEnd = new TextDecoder().decode(bytes).indexOf("\r\n\r\n");
  }
  const head = new TextDecoder().decode(bytes).slice(0, headEnd);
  const [statusLine, ...lines] = head.split("\r\n");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let remaining = Number(headers.get("content-length") ?? 0) -
    (bytes.length - new TextEncoder().encode(head).length - 4);
  while (remaining > 0) {
    const read = await conn.read(buffer);
    if (read === null) break;
    remaining -= read;
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]), headers };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

/** Options of {@linkcode request}. */
interface RequestOptions {
  token?: string;
  method?: string;
}

/** One request on an open keep-alive connection; returns the answer. */
async function request(conn: Deno.Conn, options: RequestOptions = {}): Promise<RawAnswer> {
  const auth = options.token ? `Authorization: Bearer ${options.token}\r\n` : "";
  await conn.write(
    new TextEncoder().encode(`${options.method ?? "GET"} /mcp HTTP/1.1\r\nHost: x\r\n${auth}\r\n`),
  );
  const answer = await readAnswer(conn);
  assert.ok(answer !== null, "HAProxy closed the connection");
  return answer;
}

function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/** What a test body gets: HAProxy's MCP port and its runtime API. */
interface Lb {
  port: number;
  url: URL;
  admin(command: string): Promise<string>;
}

/** Runs `lb sync` with `env` against `consulUrl`, waits for the MCP port, runs `body`. */
async function withLbSync(
  consulUrl: string,
  env: Record<string, string>,
  body: (lb: Lb) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lb-client-limits-test-" });
  const lb = spawnLbSync(consulUrl, `${dir}/run`, env);
  const port = lb.mcpPort;
  const admin = (command: string) => socketCommand(`${dir}/run/admin.sock`, command);
  try {
    await eventually("HAProxy's MCP frontend to answer", async () => {
      const conn = await connect(port);
      try {
        return (await request(conn)).status;
      } finally {
        conn.close();
      }
    }, (status) => status > 0);
    // The probes above count in the per-client tables until HAProxy has seen them close: a limit
    // test starts only once this client holds nothing there.
    await eventually(
      "the probes to leave HAProxy's per-client tables",
      async () =>
        (await admin("show table mcp")) + (await admin("show table mcp_clients_by_source")),
      (table) => !/conn_cur=[1-9]|use=[1-9]/.test(table),
    );
    await body({ port, url: new URL(`http://127.0.0.1:${port}/mcp`), admin });
  } finally {
    await lb.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `body` with a Consul dev agent and no router: a request within the limits gets 503. */
async function withConsul(body: (consulUrl: string) => Promise<void>): Promise<void> {
  const consul = await startConsulDev();
  try {
    await body(consul.url);
  } finally {
    await consul.stop();
  }
}

/** An MCP client (2026-07-28) with a bearer token, connecting from `localAddress` if given. */
async function mcpClient(url: URL, token: string, localAddress?: string): Promise<McpClient> {
  const client = new ClientV2({ name: "limits-test", version: "1.0.0" }, {
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  const httpClient = localAddress ? Deno.createHttpClient({ localAddress }) : undefined;
  const authorized: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set("authorization", `Bearer ${token}`);
    return fetch(input, { ...init, headers, ...(httpClient ? { client: httpClient } : {}) });
  };
  await client.connect(new TransportV2(url, { fetch: authorized }));
  return {
    callTool: (params) => client.callTool(params),
    async close() {
      await client.close();
      httpClient?.close();
    },
  };
}

/** The part of an MCP client the tests use. */
interface McpClient {
  callTool(params: { name: string; arguments: Record<string, unknown> }): Promise<{
    isError?: boolean;
    content?: unknown;
  }>;
  close(): Promise<void>;
}

/** The `stot` (requests sent to servers so far) of the MCP backend, from `show stat`. */
async function requestsForwarded(lb: Lb): Promise<number> {
  const csv = await lb.admin("show stat");
  const [header, ...rows] = csv.replace(/^# /, "").trim().split("\n");
  const columns = header.split(",");
  const row = rows.map((line) => line.split(",")).find((cells) =>
    cells[0] === "mcp-router" && cells[1] === "BACKEND"
  );
  assert.ok(row, `no mcp-router backend in ${csv}`);
  return Number(row[columns.indexOf("stot")]);
}

Deno.test("HAProxy limits open connections per source address, and LB_CLIENT_MAX_CONN=0 lifts it", async (t) => {
  await withConsul(async (consulUrl) => {
    await t.step("limit 2: the third open connection is refused", async () => {
      await withLbSync(consulUrl, { LB_CLIENT_MAX_CONN: "2" }, async ({ port }) => {
        const conns = [await connect(port), await connect(port)];
        try {
          // No router is registered: a request within the limits reaches the empty backend (503).
          assert.equal((await request(conns[0])).status, 503);
          assert.equal((await request(conns[1])).status, 503);
          conns.push(await connect(port));
          const refused = await request(conns[2]);
          assert.equal(refused.status, 429);
          assert.equal(refused.headers.get("retry-after"), "1");
        } finally {
          for (const conn of conns) conn.close();
        }
      });
    });
    await t.step("no limit: ten open connections are served", async () => {
      await withLbSync(consulUrl, { LB_CLIENT_MAX_CONN: "0" }, async ({ port }) => {
        const conns = await Promise.all(Array.from({ length: 10 }, () => connect(port)));
        try {
          for (const conn of conns) assert.equal((await request(conn)).status, 503);
        } finally {
          for (const conn of conns) conn.close();
        }
      });
    });
  });
});

Deno.test("HAProxy limits the request rate per bearer token, else per source address, with Retry-After", async () => {
  await withConsul(async (consulUrl) => {
    // 2 calls/s with a burst of 5: a window of 2.5 s holding 5 requests; Retry-After rounds up.
    const env = { LB_CLIENT_MAX_RATE: "2", LB_CLIENT_RATE_BURST: "5" };
    await withLbSync(consulUrl, env, async (lb) => {
      const [a, b, anonymous] = [
        await connect(lb.port),
        await connect(lb.port),
        await connect(lb.port),
      ];
      try {
        const statuses: number[] = [];
        let last: RawAnswer | undefined;
        for (let i = 0; i < 6; i++) {
          last = await request(a, { token: TOKEN_A });
          statuses.push(last.status);
        }
        assert.deepEqual(statuses, [503, 503, 503, 503, 503, 429]);
        assert.equal(last?.headers.get("retry-after"), "3");
        // Another token, and a client without one, from the same address: their own limits.
        assert.equal((await request(b, { token: TOKEN_B })).status, 503);
        assert.equal((await request(anonymous)).status, 503);
        // The tables hold hashes: no token can be read through the runtime API.
        const table = await lb.admin("show table mcp_clients_by_token");
        assert.match(table, /used:2\b/);
        assert.doesNotMatch(table, new RegExp(`${TOKEN_A}|${TOKEN_B}|client-`));
      } finally {
        for (const conn of [a, b, anonymous]) conn.close();
      }
    });
  });
});

Deno.test("HAProxy caps the requests let through from one address, whatever the tokens", async () => {
  await withConsul(async (consulUrl) => {
    // Every token has room for 1000 per second; the address for 3 per second (window 1 s).
    const env = {
      LB_CLIENT_MAX_RATE: "1000",
      LB_CLIENT_RATE_BURST: "1000",
      LB_SOURCE_MAX_RATE: "3",
    };
    await withLbSync(consulUrl, env, async (lb) => {
      // The readiness probes came from this address too: their requests leave its rate first.
      await eventually(
        "this address's rate to be 0",
        () => lb.admin("show table mcp"),
        (table) => !/gpc0_rate\(\d+\)=[1-9]/.test(table),
      );
      const conn = await connect(lb.port);
      try {
        const statuses: number[] = [];
        let last: RawAnswer | undefined;
        for (let i = 0; i < 4; i++) {
          last = await request(conn, { token: `rotated-token-${i}` });
          statuses.push(last.status);
        }
        assert.deepEqual(statuses, [503, 503, 503, 429]);
        assert.equal(last?.headers.get("retry-after"), "1");
      } finally {
        conn.close();
      }
    });
  });
});

Deno.test("HAProxy limits the requests a client has in flight, and frees them when they end", async () => {
  await withConsul(async (consulUrl) => {
    // A request whose body has not arrived is in flight at HAProxy: two of them fill the limit.
    const env = { LB_CLIENT_MAX_CONCURRENT: "2", LB_BODY_TIMEOUT: "30s" };
    await withLbSync(consulUrl, env, async (lb) => {
      const held = [await connect(lb.port), await connect(lb.port)];
      const others: Deno.Conn[] = [];
      try {
        for (const conn of held) {
          await conn.write(new TextEncoder().encode(
            `POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN_A}\r\n` +
              "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
          ));
        }
        await eventually(
          "two requests of client A in flight",
          () => lb.admin("show table mcp_clients_by_token"),
          (table) => /use=2/.test(table),
        );
        others.push(await connect(lb.port), await connect(lb.port));
        const refused = await request(others[0], { token: TOKEN_A });
        assert.equal(refused.status, 429);
        assert.equal(refused.headers.get("retry-after"), "1");
        assert.equal((await request(others[1], { token: TOKEN_B })).status, 503);
        for (const conn of held) conn.close();
        held.length = 0;
        await eventually(
          "client A's requests to end",
          () => lb.admin("show table mcp_clients_by_token"),
          (table) => !/use=[1-9]/.test(table),
        );
        assert.equal((await request(others[0], { token: TOKEN_A })).status, 503);
      } finally {
        for (const conn of [...held, ...others]) conn.close();
      }
    });
  });
});

Deno.test("HAProxy answers 408 to a client that sends its headers too slowly", async () => {
  await withConsul(async (consulUrl) => {
    await withLbSync(consulUrl, { LB_HEADER_TIMEOUT: "1s" }, async (lb) => {
      const conn = await connect(lb.port);
      try {
        await conn.write(new TextEncoder().encode("GET /mcp HTTP/1.1\r\nHost: x\r\n"));
        const answer = readAnswer(conn);
        // One header line every 200 ms keeps the connection active: only the header timeout ends it.
        let dripped = 0;
        let cut = false;
        answer.finally(() => cut = true);
        for (; dripped < 100 && !cut; dripped++) {
          await delay(200);
          if (cut) break;
          await conn.write(new TextEncoder().encode(`X-Drip-${dripped}: 1\r\n`)).catch(() => {});
        }
        const result = await answer;
        assert.equal(result?.status, 408);
        assert.ok(dripped < 100, "HAProxy waited for all 100 header lines");
        assert.equal(await conn.read(new Uint8Array(16)).catch(() => null), null);
      } finally {
        conn.close();
      }
    });
  });
});

Deno.test("through HAProxy to a real router: slow bodies, a saturated router, a flood", async (t) => {
  const consul = await startConsulDev();
  const dir = await Deno.makeTempDir({ prefix: "lb-client-limits-router-" });
  await Deno.writeTextFile(`${dir}/tokens`, `${TOKEN_A}\n${TOKEN_B}\n`);
  const echo = startService("echo-agent", { consulUrl: consul.url, id: "limits-echo-1" });
  let router: Awaited<ReturnType<typeof startRouter>> | undefined;
  try {
    router = await startRouter(consul.url, "limits-router-1", {
      ROUTER_AUTH_TOKENS_FILE: `${dir}/tokens`,
    });
    const routerUrl = router.url;
    await eventually("the router to serve echo", async () => {
      const client = await mcpClient(routerUrl, TOKEN_B);
      try {
        return await client.callTool({ name: "echo", arguments: { message: "ready" } });
      } finally {
        await client.close();
      }
    }, (result) => !result.isError);

    await t.step("a body that does not arrive gets 408 and is never forwarded", async () => {
      await withLbSync(consul.url, { LB_BODY_TIMEOUT: "1s" }, async (lb) => {
        await eventually("the router to be up in HAProxy", () => routerUp(lb), Boolean);
        const before = await requestsForwarded(lb);
        const conn = await connect(lb.port);
        try {
          await conn.write(new TextEncoder().encode(
            `POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN_A}\r\n` +
              'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"jsonrpc":',
          ));
          const answer = readAnswer(conn);
          let cut = false;
          answer.finally(() => cut = true);
          // One body byte every 200 ms: the connection is never idle, the body never complete.
          for (let dripped = 0; dripped < 50 && !cut; dripped++) {
            await delay(200);
            if (!cut) await conn.write(new TextEncoder().encode(" ")).catch(() => {});
          }
          assert.equal((await answer)?.status, 408);
        } finally {
          conn.close();
        }
        assert.equal(await requestsForwarded(lb), before, "the partial request reached the router");
        // The counter does count: a complete request moves it.
        const client = await mcpClient(lb.url, TOKEN_A);
        try {
          await client.callTool({ name: "echo", arguments: { message: "after" } });
        } finally {
          await client.close();
        }
        assert.ok(await requestsForwarded(lb) > before);
      });
    });

    await t.step(
      "a router at LB_SERVER_MAX_CONN queues the next request, then 503 with Retry-After",
      async () => {
        const env = { LB_SERVER_MAX_CONN: "1", LB_QUEUE_TIMEOUT: "1s" };
        await withLbSync(consul.url, env, async (lb) => {
          await eventually("the router to be up in HAProxy", () => routerUp(lb), Boolean);
          const slowClient = await mcpClient(lb.url, TOKEN_A);
          try {
            const slow = slowClient.callTool({
              name: "echo",
              arguments: { message: "slow", delay_ms: 4000 },
            });
            await eventually(
              "the slow call to hold the router's one slot",
              () => lb.admin("show stat"),
              (csv) => /^mcp-router,r1,[^,]*,[^,]*,1,/m.test(csv),
            );
            const conn = await connect(lb.port);
            try {
              const answer = await request(conn, { token: TOKEN_B });
              assert.equal(answer.status, 503);
              assert.equal(answer.headers.get("retry-after"), "1");
            } finally {
              conn.close();
            }
            const result = await slow;
            assert.ok(!result.isError, JSON.stringify(result));
          } finally {
            await slowClient.close();
          }
        });
      },
    );

    await t.step(
      "a client flooding at 10x its rate gets 429s, another client is served",
      async () => {
        const env = { LB_CLIENT_MAX_RATE: "20", LB_CLIENT_RATE_BURST: "20" };
        await withLbSync(consul.url, env, async (lb) => {
          await eventually("the router to be up in HAProxy", () => routerUp(lb), Boolean);
          const deadline = Date.now() + MAX_FLOOD_SECONDS * 1000;
          let flooding = true;
          let floodDone = false;
          const floodStatuses = new Map<number, number>();
          // 4 connections sending as fast as answers come for 3 s (at most 4 x 25,000 requests): far
          // over 10x the 20/s allowed.
          const floodEnd = Date.now() + 3000;
          const flood = Promise.all(Array.from({ length: 4 }, async () => {
            const conn = await connect(lb.port);
            try {
              for (let i = 0; i < 25_000 && flooding && Date.now() < floodEnd; i++) {
                const { status } = await request(conn, { token: TOKEN_A });
                floodStatuses.set(status, (floodStatuses.get(status) ?? 0) + 1);
              }
            } finally {
              conn.close();
            }
          })).finally(() => floodDone = true);
          // Another token from another address: the flood's address has its own ceiling too.
          const normal = await mcpClient(lb.url, TOKEN_B, "127.0.0.2");
          const failures: string[] = [];
          let calls = 0;
          try {
            // 10 calls/s, within its own limit, for as long as the flood lasts.
            for (; calls < 200 && !floodDone && Date.now() < deadline; calls++) {
              await delay(100);
              const result = await normal.callTool({
                name: "echo",
                arguments: { message: `normal-${calls}` },
              }).catch((error: Error) => ({
                isError: true,
                content: [{ type: "text", text: error.message }],
              }));
              if (result.isError) failures.push(JSON.stringify(result.content));
            }
          } finally {
            flooding = false;
            await flood;
            await normal.close();
          }
          assert.ok(
            calls >= 10,
            `only ${calls} calls during the flood, ${JSON.stringify([...floodStatuses])}`,
          );
          assert.deepEqual(failures, []);
          assert.ok((floodStatuses.get(429) ?? 0) > 0, JSON.stringify([...floodStatuses]));
        });
      },
    );
  } finally {
    await router?.stop();
    await echo.stop();
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Whether HAProxy has a router up in the MCP backend. */
async function routerUp(lb: Lb): Promise<boolean> {
  const csv = await lb.admin("show stat");
  return /^mcp-router,r\d+,(?:[^,]*,){15}UP/m.test(csv);
}
