import { ConsulClient } from "../services/runtime/consul/client.ts";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  CAPABILITY_SERVICE,
  type InvokeEvent,
  type InvokeRequest,
  type InvokeResponse,
} from "../proto/mod.ts";
import { type Endpoint, ServiceDiscovery } from "../services/runtime/discovery.ts";
import { createLogger } from "../services/runtime/logger.ts";
import { seededRandom, STRATEGY_NAMES } from "../services/runtime/strategies.ts";
import { ToolError } from "../services/runtime/tool_error.ts";
import { type ConsulDev, freePort, startConsulDev } from "./helpers/consul_dev.ts";
import { until } from "./helpers/poll.ts";

const SERVICE = "tool-test";
/** Every call of a load loop has a deadline, so a bug fails the test instead of hanging it. */
const BOUNDED = { deadlineMs: 10_000 };

/** Arguments the test servers understand. */
interface TestArguments {
  /** Answer with this gRPC status name instead of a result. */
  fail?: keyof typeof grpc.status;
  /** Hold the call until the test releases the server. */
  hold?: boolean;
  /** Stream this many progress events before the result. */
  events?: number;
}

/** A real gRPC server serving `platform.v1.Capability` on a loopback port. */
interface TestServer {
  readonly id: string;
  readonly port: number;
  readonly server: grpc.Server;
  /** Calls this server received. */
  calls: number;
  /** Answers every held call and stops holding new ones. */
  release(): void;
  /** Resolves when `count` calls are held. */
  held(count: number): Promise<void>;
}

async function startServer(id: string, port = 0): Promise<TestServer> {
  const server = new grpc.Server();
  let holding = true;
  const heldCalls: (() => void)[] = [];
  const heldWaiters: { count: number; resolve: () => void }[] = [];
  const state: TestServer = {
    id,
    port: 0,
    server,
    calls: 0,
    release() {
      holding = false;
      for (const answer of heldCalls.splice(0)) answer();
    },
    held(count) {
      if (heldCalls.length >= count) return Promise.resolve();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`"${id}" did not hold ${count} calls`)), 10_000);
      });
      const reached = new Promise<void>((resolve) => heldWaiters.push({ count, resolve }));
      return Promise.race([reached, timeout]).finally(() => clearTimeout(timer));
    },
  };

  function hold(answer: () => void): void {
    if (!holding) return answer();
    heldCalls.push(answer);
    for (const waiter of heldWaiters.filter((waiter) => heldCalls.length >= waiter.count)) {
      heldWaiters.splice(heldWaiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }

  function serve(request: InvokeRequest): { error?: grpc.ServiceError; args: TestArguments } {
    state.calls += 1;
    const args = JSON.parse(request.argumentsJson || "{}") as TestArguments;
    if (args.fail) {
      const error = Object.assign(new Error(`Test failure "${args.fail}" from "${id}"`), {
        code: grpc.status[args.fail],
        details: `Test failure "${args.fail}" from "${id}"`,
        metadata: new grpc.Metadata(),
      });
      return { error, args };
    }
    return { args };
  }

  const result = (request: InvokeRequest): InvokeResponse => ({
    resultJson: JSON.stringify({ tool: request.tool }),
    instanceId: id,
  });

  server.addService(CAPABILITY_SERVICE, {
    invoke(
      call: grpc.ServerUnaryCall<InvokeRequest, InvokeResponse>,
      callback: grpc.sendUnaryData<InvokeResponse>,
    ) {
      const { error, args } = serve(call.request);
      if (error) {
        callback(error);
        return;
      }
      const answer = () => callback(null, result(call.request));
      if (args.hold) hold(answer);
      else answer();
    },
    invokeStream(call: grpc.ServerWritableStream<InvokeRequest, InvokeEvent>) {
      const { error, args } = serve(call.request);
      if (error) {
        call.emit("error", error);
        return;
      }
      const total = args.events ?? 0;
      for (let index = 0; index < total; index++) {
        call.write({ progress: { progress: index + 1, total, message: `step ${index + 1}` } });
      }
      const answer = () => {
        call.write({ result: result(call.request) });
        call.end();
      };
      if (args.hold) hold(answer);
      else answer();
    },
    describe(_call: unknown, callback: grpc.sendUnaryData<unknown>) {
      callback(null, { service: SERVICE, version: "test", tools: [], instanceId: id });
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `127.0.0.1:${port}`,
      grpc.ServerCredentials.createInsecure(),
      (error, actual) => error ? reject(error) : resolve(actual),
    );
  });
  return Object.assign(state, { port: bound });
}

async function consulPut(consul: ConsulDev, path: string, body?: unknown): Promise<void> {
  const response = await fetch(`${consul.url}${path}`, {
    method: "PUT",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`PUT "${path}" failed: ${response.status} ${text}`);
}

/** Registers an instance with a TTL check that starts passing. */
function register(
  consul: ConsulDev,
  id: string,
  port: number,
  extra: Record<string, unknown> = {},
): Promise<void> {
  return consulPut(consul, "/v1/agent/service/register", {
    Name: SERVICE,
    ID: id,
    Address: "127.0.0.1",
    Port: port,
    Tags: ["platform", "tool"],
    Meta: { version: "test" },
    Check: { CheckID: `service:${id}`, TTL: "10m", Status: "passing" },
    ...extra,
  });
}

/** Runs `total` calls, at most `concurrency` at a time. */
async function runBounded<T>(
  total: number,
  concurrency: number,
  call: (index: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(total);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < total) {
      const index = next++;
      results[index] = await call(index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return results;
}

function request(args: TestArguments = {}, requestId = "test"): InvokeRequest {
  return { tool: "probe", argumentsJson: JSON.stringify(args), requestId };
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/** A Consul agent, three registered servers `a`, `b`, `c` and a ready discovery client. */
interface Fixture {
  consul: ConsulDev;
  servers: TestServer[];
  discovery: ServiceDiscovery;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

async function startFixture(ids = ["a", "b", "c"]): Promise<Fixture> {
  const consul = await startConsulDev();
  const servers: TestServer[] = [];
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const discovery = new ServiceDiscovery(SERVICE, {
    consul: new ConsulClient(consul.url),
    waitSeconds: 5,
    random: seededRandom(11),
    logger,
  });
  const close = async () => {
    await discovery.close();
    for (const server of servers) {
      server.release();
      server.server.forceShutdown();
    }
    await consul.stop();
  };
  try {
    for (const id of ids) {
      const server = await startServer(id);
      servers.push(server);
      await register(consul, id, server.port);
    }
    discovery.start();
    await discovery.ready(10_000);
    await until("every endpoint", () => discovery.endpoints().length === ids.length);
  } catch (error) {
    await close();
    throw error;
  }
  return { consul, servers, discovery, logs, close };
}

Deno.test("ServiceDiscovery sees endpoints appear and disappear", async (t) => {
  const fixture = await startFixture(["a"]);
  const { consul, discovery, servers } = fixture;
  const changes: string[][] = [];
  discovery.onChange((endpoints) => changes.push(endpoints.map((endpoint) => endpoint.id)));
  try {
    await t.step(
      "a registered instance appears with its address, weight, tags and meta",
      async () => {
        const b = await startServer("b");
        servers.push(b);
        await register(consul, "b", b.port, { Weights: { Passing: 5, Warning: 1 } });
        await until("two endpoints", () => discovery.endpoints().length === 2);
        const endpoint = discovery.endpoints().find(({ id }) => id === "b") as Endpoint;
        assert.deepEqual(endpoint, {
          id: "b",
          address: "127.0.0.1",
          port: b.port,
          weight: 5,
          tags: ["platform", "tool"],
          meta: { version: "test" },
        });
      },
    );
    await t.step("an instance whose check turns critical disappears", async () => {
      await consulPut(consul, "/v1/agent/check/fail/service:a");
      await until("one endpoint", () => discovery.endpoints().length === 1);
      assert.equal(discovery.endpoints()[0].id, "b");
      const { endpoint } = await discovery.invoke(request());
      assert.equal(endpoint.id, "b");
    });
    await t.step("a deregistered instance disappears", async () => {
      await consulPut(consul, "/v1/agent/service/deregister/b");
      await until("no endpoint", () => discovery.endpoints().length === 0);
    });
    await t.step("listeners saw each change once", () => {
      assert.deepEqual(changes, [["a", "b"], ["b"], []]);
    });
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery throws UNAVAILABLE naming the service when no instance passes", async () => {
  const fixture = await startFixture([]);
  try {
    await assert.rejects(() => fixture.discovery.invoke(request()), (error: unknown) => {
      assert.ok(error instanceof ToolError);
      assert.equal(error.code, "UNAVAILABLE");
      assert.equal(error.message, 'No healthy instance of "tool-test" in Consul');
      return true;
    });
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery uses all 3 instances over 300 calls with every strategy", async (t) => {
  const fixture = await startFixture();
  try {
    for (const strategy of STRATEGY_NAMES) {
      await t.step(strategy, async () => {
        fixture.discovery.setStrategy(strategy);
        const results = await runBounded(
          300,
          4,
          () => fixture.discovery.invoke(request(), BOUNDED),
        );
        const counts = countBy(results.map(({ response }) => response.instanceId));
        assert.deepEqual(Object.keys(counts).sort(), ["a", "b", "c"]);
        for (const { response, endpoint } of results) {
          assert.equal(response.instanceId, endpoint.id);
        }
      });
    }
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery least-outstanding avoids a slow instance", async () => {
  const fixture = await startFixture();
  const { discovery, servers } = fixture;
  const [slow, ...fast] = servers;
  for (const server of fast) server.release();
  try {
    discovery.setStrategy("least-outstanding");
    // The first call goes to "a", which holds it: one outstanding call, until released below.
    const stuck = discovery.invoke(request({ hold: true }));
    await slow.held(1);
    assert.equal(discovery.outstanding().get("a"), 1);
    const results = await runBounded(
      60,
      2,
      () => discovery.invoke(request({ hold: true }), BOUNDED),
    );
    assert.deepEqual(countBy(results.map(({ endpoint }) => endpoint.id)), { b: 30, c: 30 });
    assert.equal(slow.calls, 1);
    slow.release();
    assert.equal((await stuck).endpoint.id, "a");
    assert.equal(discovery.outstanding().size, 0);
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery loses no idempotent call when an instance is force-shut", async () => {
  const fixture = await startFixture();
  const { discovery, servers } = fixture;
  const [victim, ...survivors] = servers;
  for (const server of survivors) server.release();
  try {
    // Calls to the victim are held, so several are in flight when it is shut down.
    const load = runBounded(
      90,
      6,
      (index) =>
        discovery.invoke(request({ hold: true }, `call-${index}`), {
          idempotent: true,
          deadlineMs: 20_000,
        }),
    );
    await victim.held(3);
    victim.server.forceShutdown();
    const results = await load;
    assert.equal(results.length, 90);
    assert.ok(results.every(({ response }) => response.instanceId !== "a"));
    assert.ok(victim.calls > 0, "the victim received calls before it was shut down");
    assert.ok(survivors.every((server) => server.calls > 0));
    const kinds = new Set(fixture.logs.map((line) => line.kind).filter(Boolean));
    assert.ok(kinds.has("dropped"), `dropped calls were retried: ${[...kinds]}`);
    assert.ok(
      fixture.logs.some((line) => line.msg === "Instance ejected" && line.endpoint === "a"),
      "the victim was ejected",
    );
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery does not retry a non-idempotent call whose connection dropped", async () => {
  const fixture = await startFixture(["a", "b"]);
  const { discovery, servers } = fixture;
  try {
    const call = discovery.invoke(request({ hold: true }));
    await servers[0].held(1);
    servers[0].server.forceShutdown();
    await assert.rejects(call, (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.CANCELLED);
      assert.equal(error.details, "Call cancelled");
      return true;
    });
    assert.equal(servers[1].calls, 0);
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery retries undelivered calls on another instance and ejects the dead one", async () => {
  const fixture = await startFixture(["b", "c"]);
  const { consul, discovery } = fixture;
  for (const server of fixture.servers) server.release();
  try {
    // "a" passes in Consul but nothing listens on its port.
    await register(consul, "a", freePort());
    await until("three endpoints", () => discovery.endpoints().length === 3);
    const results = await runBounded(60, 1, () => discovery.invoke(request(), BOUNDED));
    assert.ok(results.every(({ endpoint }) => endpoint.id !== "a"));
    const failures = fixture.logs.filter((line) => line.msg === "Call to instance failed");
    assert.ok(failures.length > 0 && failures.length < 20, `${failures.length} failed attempts`);
    assert.ok(failures.every((line) => line.endpoint === "a" && line.kind === "undelivered"));
    assert.ok(fixture.logs.some((line) => line.msg === "Instance ejected"));
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery tries a lone instance again when the call reached it nowhere", async () => {
  const fixture = await startFixture([]);
  const port = freePort();
  let late: TestServer | undefined;
  try {
    await register(fixture.consul, "late", port);
    await until("the endpoint", () => fixture.discovery.endpoints().length === 1);
    const call = fixture.discovery.invoke(request(), BOUNDED);
    // The only instance comes up just after the first attempt was refused.
    await until(
      "a refused attempt",
      () => fixture.logs.some((line) => line.msg === "Call to instance failed"),
    );
    late = await startServer("late", port);
    late.release();
    const { endpoint } = await call;
    assert.equal(endpoint.id, "late");
    assert.equal(late.calls, 1);
  } finally {
    late?.server.forceShutdown();
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery keeps serving the last known endpoints when Consul stops", async () => {
  const fixture = await startFixture();
  const { consul, discovery } = fixture;
  for (const server of fixture.servers) server.release();
  try {
    await consul.stop();
    const results = await runBounded(30, 3, () => discovery.invoke(request(), BOUNDED));
    assert.deepEqual(countBy(results.map(({ endpoint }) => endpoint.id)), { a: 10, b: 10, c: 10 });
    assert.equal(discovery.endpoints().length, 3);
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery passes application errors through without retrying", async (t) => {
  const fixture = await startFixture();
  for (const server of fixture.servers) server.release();
  const totalCalls = () => fixture.servers.reduce((sum, server) => sum + server.calls, 0);
  try {
    for (const fail of ["INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE", "CANCELLED"] as const) {
      await t.step(fail, async () => {
        const before = totalCalls();
        await assert.rejects(
          () => fixture.discovery.invoke(request({ fail }), { idempotent: true }),
          (error: grpc.ServiceError) => {
            assert.equal(error.code, grpc.status[fail]);
            assert.match(error.details, new RegExp(`^Test failure "${fail}" from "[abc]"$`));
            return true;
          },
        );
        assert.equal(totalCalls() - before, 1);
      });
    }
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery cancels the gRPC call when the signal aborts", async () => {
  const fixture = await startFixture(["a"]);
  try {
    const controller = new AbortController();
    const call = fixture.discovery.invoke(request({ hold: true }), {
      signal: controller.signal,
      idempotent: true,
    });
    await fixture.servers[0].held(1);
    controller.abort();
    await assert.rejects(call, (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.CANCELLED);
      return true;
    });
    assert.equal(fixture.servers[0].calls, 1);
    assert.equal(fixture.discovery.outstanding().size, 0);
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery streams every event, then the result", async () => {
  const fixture = await startFixture(["a"]);
  fixture.servers[0].release();
  try {
    const events: InvokeEvent[] = [];
    const { response, endpoint } = await fixture.discovery.invokeStream(request({ events: 3 }), {
      onEvent: (event) => events.push(event),
    });
    assert.deepEqual(events.map((event) => event.event), [
      "progress",
      "progress",
      "progress",
      "result",
    ]);
    assert.deepEqual(events[3].result, response);
    assert.equal(endpoint.id, "a");
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery retries a stream only before its first event", async (t) => {
  const fixture = await startFixture(["a", "b"]);
  const { discovery, servers } = fixture;
  const [a, b] = servers;
  b.release();
  try {
    await t.step(
      "a stream that dropped after an event is not retried, even if idempotent",
      async () => {
        // Round-robin starts with the smallest ID, so this goes to "a", which holds it.
        const events: InvokeEvent[] = [];
        const call = discovery.invokeStream(request({ events: 1, hold: true }), {
          idempotent: true,
          onEvent: (event) => events.push(event),
        });
        await until("the first event", () => events.length === 1);
        a.server.forceShutdown();
        await assert.rejects(call, (error: grpc.ServiceError) => {
          assert.equal(error.code, grpc.status.CANCELLED);
          return true;
        });
        assert.equal(b.calls, 0);
      },
    );
    await t.step(
      "a stream that could not be delivered is retried on another instance",
      async () => {
        // "b" takes one call so that round-robin comes back to the dead "a".
        assert.equal((await discovery.invokeStream(request(), { onEvent() {} })).endpoint.id, "b");
        const events: InvokeEvent[] = [];
        const { endpoint } = await discovery.invokeStream(request({ events: 2 }), {
          onEvent: (event) => events.push(event),
        });
        assert.equal(endpoint.id, "b");
        assert.deepEqual(events.map((event) => event.event), ["progress", "progress", "result"]);
        assert.ok(
          fixture.logs.some((line) => line.endpoint === "a" && line.kind === "undelivered"),
        );
      },
    );
  } finally {
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery goes to another instance when one never completes a connection", async () => {
  // A listener that accepts TCP connections but never speaks HTTP/2 behaves like the address of a
  // killed instance on an overlay network: the channel stays CONNECTING.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  const fixture = await startFixture(["a"]);
  const discovery = new ServiceDiscovery(SERVICE, {
    consul: new ConsulClient(fixture.consul.url),
    waitSeconds: 5,
    connectTimeoutMs: 300,
  });
  try {
    await register(fixture.consul, "silent", (silent.addr as Deno.NetAddr).port);
    discovery.start();
    await until("both endpoints", () => discovery.endpoints().length === 2);
    const answers = await runBounded(20, 4, async () => {
      const { endpoint } = await discovery.invoke(request(), { ...BOUNDED, idempotent: false });
      return endpoint.id;
    });
    assert.deepEqual(countBy(answers), { a: 20 });
  } finally {
    await discovery.close();
    silent.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
    await fixture.close();
  }
});

Deno.test("ServiceDiscovery tries failing instances only when none passes", async () => {
  const fixture = await startFixture(["a", "b"]);
  const setCheck = (id: string, status: "pass" | "fail") =>
    consulPut(fixture.consul, `/v1/agent/check/${status}/service:${id}`);
  try {
    await setCheck("b", "fail");
    await until("b leaving the passing set", () => fixture.discovery.endpoints().length === 1);
    const whilePassing = await runBounded(10, 2, async () => {
      const { endpoint } = await fixture.discovery.invoke(request(), BOUNDED);
      return endpoint.id;
    });
    assert.deepEqual(countBy(whilePassing), { a: 10 });

    await setCheck("a", "fail");
    await until("no passing instance", () => fixture.discovery.endpoints().length === 0);
    const inPanic = await runBounded(10, 2, async () => {
      const { endpoint } = await fixture.discovery.invoke(request(), BOUNDED);
      return endpoint.id;
    });
    assert.deepEqual(countBy(inPanic), { a: 5, b: 5 });
    assert.ok(
      fixture.logs.some((line) => line.msg === "No passing instance, trying the failing ones"),
    );
  } finally {
    await fixture.close();
  }
});
