/**
 * Issue 11's floods against real router processes, with real Consul and a real echo agent (gRPC):
 * each ends with the limit's answer (429 or 503 with Retry-After, 400 for an oversized batch, 408
 * for a slow client), router memory under its 256 MiB container limit, and a normal client still
 * served. Clients are told apart by `X-Forwarded-For` from a trusted proxy (loopback here), as the
 * routers do behind HAProxy.
 */
import assert from "node:assert/strict";
import { type ConsulDev, startConsulDev } from "./helpers/consul_dev.ts";
import { type ServiceProcess, spawnDeno, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import {
  backendInFlight,
  JSON_HEADERS,
  MODERN_ENVELOPE,
  modernCallHeaders,
  type RouterProcess,
  sessionKeyText,
  startRouter,
} from "./router_harness.ts";

/** The router's container limit in stack.yml. */
const CONTAINER_LIMIT_KIB = 256 * 1024;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: string;
}

/** A POST to the router as the client at `address` (behind the trusted proxy). */
async function post(
  router: RouterProcess,
  address: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(router.url, {
    method: "POST",
    headers: { ...JSON_HEADERS, "x-forwarded-for": address, ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: await response.text(),
  };
}

/** Opens a 2025 session as the client at `address`; returns its `Mcp-Session-Id`. */
async function openSession(
  router: RouterProcess,
  address: string,
  protocolVersion = "2025-11-25",
): Promise<string> {
  const response = await fetch(router.url, {
    method: "POST",
    headers: { ...JSON_HEADERS, "x-forwarded-for": address },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion, capabilities: {}, clientInfo: { name: "flood", version: "1" } },
    }),
  });
  await response.body?.cancel();
  assert.equal(response.status, 200);
  return response.headers.get("mcp-session-id")!;
}

function echoCall(id: number, delayMs = 0) {
  return {
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "echo", arguments: { message: `m${id}`, delay_ms: delayMs } },
  };
}

function sessionHeaders(sid: string, version = "2025-11-25"): Record<string, string> {
  return { "mcp-session-id": sid, "mcp-protocol-version": version };
}

/**
 * The router's resident set size, from the kernel's account of the process (`cat`: the tests'
 * permissions do not cover reading /proc directly).
 */
async function rssKib(pid: number): Promise<number> {
  const { stdout } = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(new TextDecoder().decode(stdout))![1]);
}

async function metricsText(router: RouterProcess): Promise<string> {
  return await (await fetch(`http://127.0.0.1:${router.opsPort}/metrics`)).text();
}

/** Runs `count` tasks, at most `width` at a time. */
async function inWaves<T>(
  count: number,
  width: number,
  task: (i: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = [];
  for (let start = 0; start < count; start += width) {
    const wave = Array.from({ length: Math.min(width, count - start) }, (_, i) => task(start + i));
    results.push(...await Promise.all(wave));
  }
  return results;
}

/** Consul, an echo agent and a router with `env`; the catalog has `echo` before the test runs. */
async function withRouter(
  env: Record<string, string>,
  test: (router: RouterProcess, echo: ServiceProcess) => Promise<void>,
): Promise<void> {
  const consul: ConsulDev = await startConsulDev();
  const echo = startService("echo-agent", { consulUrl: consul.url, id: "echo-1" });
  let router: RouterProcess | undefined;
  try {
    router = await startRouter(consul.url, "router-limits", {
      ROUTER_SESSION_KEY: sessionKeyText(),
      ROUTER_TRUSTED_PROXIES: "127.0.0.1",
      ...env,
    });
    const ready = router;
    // Each poll as a client of its own: the limits under test must not be spent here.
    let poll = 0;
    await eventually("echo in the catalog", async () => {
      const address = `192.0.2.${++poll % 250}`;
      const answer = await post(ready, address, {
        jsonrpc: "2.0",
        id: 1,
        method: "tools/list",
      }, {
        "mcp-session-id": await openSession(ready, address),
        "mcp-protocol-version": "2025-11-25",
      });
      return answer.body;
    }, (body) => body.includes('"echo"'));
    await test(router, echo);
  } finally {
    await router?.stop();
    await echo.stop();
    await consul.stop();
  }
}

Deno.test("router limits: rate and concurrency per client answer 429 + Retry-After, the router's cap 503", async (t) => {
  await withRouter({
    // Low enough that a slow machine cannot refill a client's bucket during its flood.
    ROUTER_CLIENT_MAX_RATE: "5",
    ROUTER_CLIENT_BURST: "5",
    ROUTER_CLIENT_MAX_CONCURRENT: "4",
    ROUTER_MAX_BATCH: "4",
    ROUTER_MAX_IN_FLIGHT: "6",
  }, async (router) => {
    const ping = { jsonrpc: "2.0", id: 1, method: "ping" };
    const modern = modernCallHeaders("echo");
    const meta = MODERN_ENVELOPE;
    const slowCall = (id: number) => ({
      ...echoCall(id, 3000),
      params: { ...echoCall(id, 3000).params, _meta: meta },
    });

    await t.step(
      "a flood of 100 requests from one client: 429 with Retry-After past its burst",
      async () => {
        const sid = await openSession(router, "198.51.100.1");
        // One after the other: the flood is about rate, and 100 at once would also meet the
        // client's limit of 4 concurrent calls (its own 429) on a slow machine.
        const answers = [];
        for (let i = 0; i < 100; i++) {
          answers.push(await post(router, "198.51.100.1", ping, sessionHeaders(sid)));
        }
        const limited = answers.filter((answer) => answer.status === 429);
        assert.ok(limited.length >= 75, `${limited.length} of 100 refused`);
        for (const answer of limited) {
          assert.ok(Number(answer.retryAfter) >= 1, `Retry-After "${answer.retryAfter}"`);
          assert.match(JSON.parse(answer.body).error.message, /at most 5 calls per second/);
        }
        // Another client is served meanwhile.
        const other = await openSession(router, "198.51.100.2");
        assert.equal((await post(router, "198.51.100.2", ping, sessionHeaders(other))).status, 200);
      },
    );

    await t.step(
      "a client's fifth concurrent call is 429, a full router 503, other clients are served",
      async () => {
        const slow = Array.from(
          { length: 4 },
          (_, i) => post(router, "198.51.100.3", slowCall(i), modern),
        );
        await eventually(
          "4 calls in flight",
          () => backendInFlight(router, "agent-echo"),
          (n) => n === 4,
        );
        const fifth = await post(router, "198.51.100.3", slowCall(9), modern);
        assert.equal(fifth.status, 429);
        assert.equal(fifth.retryAfter, "1");
        assert.match(JSON.parse(fifth.body).error.message, /at most 4 per client/);

        // Another client's two calls fill the router's 6: a third client's is 503.
        const two = [0, 1].map((i) => post(router, "198.51.100.4", slowCall(20 + i), modern));
        await eventually(
          "6 calls in flight",
          () => backendInFlight(router, "agent-echo"),
          (n) => n === 6,
        );
        const full = await post(router, "198.51.100.5", slowCall(30), modern);
        assert.equal(full.status, 503);
        assert.equal(full.retryAfter, "1");
        assert.match(JSON.parse(full.body).error.message, /router is saturated/);
        for (const answer of await Promise.all(two)) assert.equal(answer.status, 200);
        for (const answer of await Promise.all(slow)) {
          assert.equal(answer.status, 200, answer.body);
        }
        const after = await post(router, "198.51.100.3", {
          ...echoCall(40),
          params: { ...echoCall(40).params, _meta: meta },
        }, modern);
        assert.equal(after.status, 200, "the slots came back");
      },
    );

    await t.step("each refusal is counted by its reason", async () => {
      const text = await metricsText(router);
      assert.match(text, /mcp_router_limited_total\{reason="client_rate"\} \d+/);
      assert.match(text, /mcp_router_limited_total\{reason="client_concurrency"\} 1/);
      assert.match(text, /mcp_router_limited_total\{reason="router_in_flight"\} 1/);
    });
  });
});

Deno.test("router limits: a JSON-RPC batch is bounded and each member counts against the client", async (t) => {
  await withRouter(
    { ROUTER_MAX_BATCH: "32", ROUTER_CLIENT_MAX_CONCURRENT: "40" },
    async (router) => {
      const version = "2025-03-26";
      const sid = await openSession(router, "198.51.100.10", version);
      const headers = sessionHeaders(sid, version);
      let most = 0;
      let watching = true;
      const watch = (async () => {
        while (watching) {
          most = Math.max(most, await backendInFlight(router, "agent-echo"));
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      })();
      try {
        await t.step("a batch of 100 echo calls of 3 s is refused whole, none runs", async () => {
          const batch = Array.from({ length: 100 }, (_, i) => echoCall(i, 3000));
          const answer = await post(router, "198.51.100.10", batch, headers);
          assert.equal(answer.status, 400);
          assert.match(
            JSON.parse(answer.body).error.message,
            /batch of 100 messages is over the limit of 32/,
          );
        });

        await t.step(
          "a batch of 32 runs; a second from the same client is 429, another client is served",
          async () => {
            const first = post(
              router,
              "198.51.100.10",
              Array.from({ length: 32 }, (_, i) => echoCall(100 + i, 3000)),
              headers,
            );
            await eventually(
              "32 calls in flight",
              () => backendInFlight(router, "agent-echo"),
              (n) => n === 32,
            );
            const second = await post(
              router,
              "198.51.100.10",
              Array.from({ length: 32 }, (_, i) => echoCall(200 + i, 3000)),
              headers,
            );
            assert.equal(second.status, 429);
            assert.equal(second.retryAfter, "1");
            const otherSid = await openSession(router, "198.51.100.11");
            const other = await post(
              router,
              "198.51.100.11",
              echoCall(300),
              sessionHeaders(otherSid),
            );
            assert.equal(other.status, 200);
            assert.match(other.body, /m300/);
            const done = await first;
            assert.equal(done.status, 200);
            assert.equal(JSON.parse(done.body).length, 32);
          },
        );
      } finally {
        watching = false;
        await watch;
      }
      assert.ok(most <= 33, `at most ${most} echo calls ran at once`);
    },
  );
});

Deno.test("router limits: listening streams are capped per session and in total; memory stays bounded", async (t) => {
  await withRouter({
    // Rate out of the way: this test is about streams and connections.
    ROUTER_CLIENT_MAX_RATE: "100000",
    ROUTER_CLIENT_BURST: "100000",
    ROUTER_HEADER_TIMEOUT: "60s",
  }, async (router) => {
    const open: Response[] = [];
    const listen = async (address: string, sid: string): Promise<Answer> => {
      const response = await fetch(router.url, {
        headers: {
          accept: "text/event-stream",
          "x-forwarded-for": address,
          ...sessionHeaders(sid),
        },
      });
      if (response.status === 200) open.push(response);
      else await response.body?.cancel();
      return { status: response.status, retryAfter: response.headers.get("retry-after"), body: "" };
    };
    const before = await rssKib(router.pid);
    try {
      await t.step(
        "3,000 GET streams on one session: 4 open, the rest 429 with Retry-After",
        async () => {
          const sid = await openSession(router, "203.0.113.1");
          const answers = await inWaves(3000, 100, () => listen("203.0.113.1", sid));
          assert.equal(answers.filter((a) => a.status === 200).length, 4);
          const refused = answers.filter((a) => a.status === 429);
          assert.equal(refused.length, 2996);
          assert.ok(refused.every((a) => Number(a.retryAfter) >= 1));
        },
      );

      await t.step("up to the router's 500 streams from many clients, then 503", async () => {
        // 16 clients (32 streams each, their cap) x 8 sessions x 4 streams: 512 more asked for.
        const sessions: [string, string][] = [];
        for (let client = 0; client < 16; client++) {
          for (let s = 0; s < 8; s++) {
            const address = `203.0.113.${10 + client}`;
            sessions.push([address, await openSession(router, address)]);
          }
        }
        const answers = await inWaves(sessions.length * 4, 64, (i) => listen(...sessions[i >> 2]));
        assert.equal(open.length, 500);
        const full = answers.filter((a) => a.status === 503);
        assert.equal(full.length, answers.length - 496);
        assert.ok(full.every((a) => Number(a.retryAfter) >= 1));
        assert.match(await metricsText(router), /mcp_router_listening_streams 500/);
      });

      await t.step(
        "600 more idle connections: past 1,024 closed at once; RSS under 256 MiB",
        async () => {
          const idle = await inWaves(
            600,
            100,
            () => Deno.connect({ hostname: "127.0.0.1", port: router.port }),
          );
          try {
            await eventually(
              "connections over the cap closed",
              async () =>
                Number(
                  /connections_cut_total\{reason="max_connections"\} (\d+)/.exec(
                    await metricsText(router),
                  )?.[1] ?? 0,
                ),
              (cut) => cut >= 60,
            );
            const rss = await rssKib(router.pid);
            console.log(
              `router RSS: ${before} KiB before, ${rss} KiB with 500 streams and 1,024 connections`,
            );
            assert.ok(rss < CONTAINER_LIMIT_KIB, `RSS ${rss} KiB`);
          } finally {
            for (const conn of idle) {
              conn.close();
            }
          }
        },
      );

      await t.step("a normal client's calls are still served", async () => {
        const sid = await openSession(router, "198.51.100.99");
        const answer = await post(router, "198.51.100.99", echoCall(1), sessionHeaders(sid));
        assert.equal(answer.status, 200);
        assert.match(answer.body, /m1/);
      });
    } finally {
      await Promise.all(open.map((response) => response.body?.cancel()));
    }
    await eventually(
      "the streams closed",
      async () => (/mcp_router_listening_streams (\d+)/.exec(await metricsText(router)))?.[1],
      (count) => count === "0",
    );
  });
});

Deno.test("router limits: quiet streams get heartbeats and are closed when idle", async () => {
  await withRouter(
    { ROUTER_STREAM_HEARTBEAT: "200ms", ROUTER_STREAM_IDLE: "1s" },
    async (router) => {
      const sid = await openSession(router, "203.0.113.200");
      const response = await fetch(router.url, {
        headers: {
          accept: "text/event-stream",
          "x-forwarded-for": "203.0.113.200",
          ...sessionHeaders(sid),
        },
      });
      assert.equal(response.status, 200);
      // The stream ends on its own (the router closes it once idle); the text so far is returned.
      const text = await response.text();
      assert.match(text, /^: keepalive$/m);
      assert.doesNotMatch(text, /^data:/m);
      assert.match(await metricsText(router), /mcp_router_listening_streams 0/);
    },
  );
});

/** Connects to the router's MCP port, sends `first`, and reads until the router closes. */
async function rawExchange(router: RouterProcess, first: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: router.port });
  try {
    await conn.write(new TextEncoder().encode(first));
    const chunks: string[] = [];
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(new TextDecoder().decode(buffer.subarray(0, n)));
    }
    return chunks.join("");
  } finally {
    conn.close();
  }
}

Deno.test("router limits: slow clients are cut off, on headers and on bodies", async (t) => {
  await withRouter({ ROUTER_HEADER_TIMEOUT: "1s", ROUTER_BODY_TIMEOUT: "1s" }, async (router) => {
    await t.step(
      "200 connections sending half a header block: each gets 408 and is closed",
      async () => {
        const slow = Array.from(
          { length: 200 },
          () => rawExchange(router, "POST /mcp HTTP/1.1\r\nHost: x\r\n"),
        );
        // A normal client is served while they hang on.
        const sid = await openSession(router, "198.51.100.50");
        assert.equal(
          (await post(router, "198.51.100.50", echoCall(1), sessionHeaders(sid))).status,
          200,
        );
        for (const answer of await Promise.all(slow)) {
          assert.match(answer, /^HTTP\/1\.1 408 /);
        }
      },
    );

    await t.step("a connection that sends nothing is closed", async () => {
      assert.match(await rawExchange(router, ""), /^HTTP\/1\.1 408 /);
    });

    await t.step(
      "a POST whose body stops half way: the router's 408, then the connection closes",
      async () => {
        const answer = await rawExchange(
          router,
          "POST /mcp HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n" +
            'accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{"json',
        );
        assert.match(answer, /^HTTP\/1\.1 408 /);
        assert.match(answer, /did not arrive/);
      },
    );

    await t.step("a chunked body that stops half way is cut as well", async () => {
      const answer = await rawExchange(
        router,
        "POST /mcp HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n" +
          'Transfer-Encoding: chunked\r\n\r\n5\r\n{"jso',
      );
      assert.match(answer, /^HTTP\/1\.1 408 /);
    });

    await t.step("ambiguous framing is refused with 400, never forwarded", async () => {
      const answer = await rawExchange(
        router,
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      );
      assert.match(answer, /^HTTP\/1\.1 400 /);
    });

    const text = await metricsText(router);
    assert.match(text, /mcp_router_connections_cut_total\{reason="header_timeout"\} 201/);
    assert.match(text, /mcp_router_connections_cut_total\{reason="malformed"\} 1/);
  });
});

Deno.test("router limits: ops endpoints are off the MCP port, and unique paths add no series", async (t) => {
  await withRouter({}, async (router) => {
    await t.step(
      "/metrics, /healthz, /readyz: 404 on the MCP port, 200 on the ops port",
      async () => {
        for (const path of ["/metrics", "/healthz", "/readyz"]) {
          const mcp = await fetch(`http://127.0.0.1:${router.port}${path}`);
          const body = await mcp.text();
          assert.equal(mcp.status, 404, path);
          assert.doesNotMatch(body, /mcp_router_|ready|ok/);
          const ops = await fetch(`http://127.0.0.1:${router.opsPort}${path}`);
          await ops.body?.cancel();
          assert.equal(ops.status, 200, path);
        }
      },
    );

    await t.step("2,000 unique 404 paths and odd methods: the series stay a handful", async () => {
      await inWaves(2000, 50, async (i) => {
        const response = await fetch(
          `http://127.0.0.1:${router.port}/probe-${i}-${crypto.randomUUID()}`,
          {
            method: i % 2 === 0 ? "GET" : `M${i}`,
          },
        );
        await response.body?.cancel();
      });
      const text = await metricsText(router);
      const series = text.split("\n").filter((line) =>
        /^mcp_router_http_request(s_total|_duration_seconds_count)\{/.test(line)
      );
      assert.ok(series.length <= 10, series.join("\n"));
      assert.match(text, /mcp_router_http_requests_total\{path="other",status="404"\} 2003/);
      assert.doesNotMatch(text, /probe-/);
    });
  });
});

Deno.test("router limits: a bad limit setting exits 2 naming it", async () => {
  const router = spawnDeno(["services/mcp-router/main.ts"], {
    env: {
      PORT: "0",
      CONSUL_HTTP_ADDR: "http://127.0.0.1:1",
      ROUTER_CLIENT_MAX_RATE: "fast",
      ROUTER_STREAM_IDLE: "forever",
    },
  });
  const status = await router.exited;
  assert.equal(status.code, 2);
  assert.match(router.output(), /^error: mcp-router: .*Invalid ROUTER_CLIENT_MAX_RATE "fast"/m);
  assert.match(router.output(), /Invalid ROUTER_STREAM_IDLE "forever"/);
});
