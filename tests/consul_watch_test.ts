import { ConsulClient } from "../services/runtime/consul/client.ts";
import assert from "node:assert/strict";
import { ConsulWatch } from "../services/runtime/consul/watch.ts";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { until } from "./helpers/poll.ts";

/** A scripted stand-in for Consul: answers request N with `answers[N]` (the last one repeats). */
interface FakeAnswer {
  index: number;
  body: unknown;
  status?: number;
}

function startFakeConsul(answers: FakeAnswer[]) {
  const requests: URL[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    const answer = answers[Math.min(requests.length, answers.length - 1)];
    requests.push(url);
    return new Response(JSON.stringify(answer.body), {
      status: answer.status ?? 200,
      headers: { "X-Consul-Index": String(answer.index), "Content-Type": "application/json" },
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, requests, server };
}

Deno.test("ConsulWatch reads stale by default, from the leader only when asked", async () => {
  const fake = startFakeConsul([{ index: 5, body: [] }]);
  const stale = new ConsulWatch("/v1/catalog/services", {
    consul: new ConsulClient(fake.url),
    waitSeconds: 1,
  });
  const leader = new ConsulWatch("/v1/catalog/services", {
    consul: new ConsulClient(fake.url),
    consistency: "default",
    waitSeconds: 1,
  });
  try {
    assert.equal(new URL(stale.url).search, "?stale");
    assert.equal(new URL(leader.url).search, "");
    stale.start();
    leader.start();
    await stale.ready(5_000);
    await leader.ready(5_000);
    const firsts = fake.requests.filter((url) => !url.searchParams.has("index"))
      .map((url) => url.search).sort();
    assert.deepEqual(firsts, ["", "?stale"]);
  } finally {
    await stale.close();
    await leader.close();
    await fake.server.shutdown();
  }
});

Deno.test("ConsulWatch follows the index rules of blocking queries", async (t) => {
  const fake = startFakeConsul([
    { index: 10, body: ["a"] },
    { index: 12, body: ["a", "b"] },
    { index: 3, body: ["c"] },
    { index: 3, body: ["c"] },
    { index: 0, body: ["d"] },
    { index: 0, body: ["d"] },
  ]);
  const seen: unknown[] = [];
  const watch = new ConsulWatch<string[]>("/v1/health/service/x", {
    consul: new ConsulClient(fake.url),
    query: { passing: "" },
    waitSeconds: 1,
    minIntervalMs: 1,
  });
  watch.onChange((value, index) => seen.push([index, value]));
  try {
    watch.start();
    assert.deepEqual(await watch.ready(5_000), ["a"]);
    await until("eight requests", () => fake.requests.length >= 8);
    const sent = fake.requests.slice(0, 8).map((url) => url.search);
    await t.step("the first request does not block", () => {
      assert.equal(sent[0], "?passing&stale");
    });
    await t.step("later requests block on the last index", () => {
      assert.equal(sent[1], "?passing&stale&index=10&wait=1s");
      assert.equal(sent[2], "?passing&stale&index=12&wait=1s");
    });
    await t.step("an index that goes backwards restarts from a plain read", () => {
      assert.equal(sent[3], "?passing&stale");
      assert.equal(sent[4], "?passing&stale&index=3&wait=1s");
    });
    await t.step("an index below 1 is sent as 1", () => {
      assert.equal(sent[5], "?passing&stale");
      assert.equal(sent[6], "?passing&stale&index=1&wait=1s");
      assert.equal(sent[7], "?passing&stale&index=1&wait=1s");
    });
    await t.step("listeners see each new body once", () => {
      assert.deepEqual(seen, [[10, ["a"]], [12, ["a", "b"]], [3, ["c"]], [0, ["d"]]]);
      assert.deepEqual(watch.value, ["d"]);
    });
  } finally {
    await watch.close();
    await fake.server.shutdown();
  }
});

Deno.test("ConsulWatch keeps the last value and backs off while Consul answers errors", async () => {
  const fake = startFakeConsul([
    { index: 5, body: ["a"] },
    { index: 5, body: "boom", status: 500 },
  ]);
  const watch = new ConsulWatch<string[]>("/v1/catalog/services", {
    consul: new ConsulClient(fake.url),
    minIntervalMs: 1,
    baseBackoffMs: 50,
    maxBackoffMs: 200,
    random: () => 0.5,
  });
  try {
    watch.start();
    await watch.ready(5_000);
    await until("retries", () => fake.requests.length >= 4);
    assert.equal(watch.failing, true);
    assert.deepEqual(watch.value, ["a"]);
    assert.equal(watch.index, 5);
  } finally {
    await watch.close();
    await fake.server.shutdown();
  }
});

Deno.test("ConsulWatch ready() names the URL when Consul cannot be reached", async () => {
  const watch = new ConsulWatch("/v1/catalog/services", {
    consul: new ConsulClient("http://127.0.0.1:1"),
    baseBackoffMs: 20,
  });
  try {
    watch.start();
    await assert.rejects(() => watch.ready(300), (error: Error) => {
      assert.match(
        error.message,
        /^Cannot read "http:\/\/127\.0\.0\.1:1\/v1\/catalog\/services\?stale"/,
      );
      return true;
    });
  } finally {
    await watch.close();
  }
});

Deno.test("ConsulWatch close() ends a blocking query in flight", async () => {
  const consul = await startConsulDev();
  /** The blocking queries the watch sent (index > 0), with how each one ended. */
  const blocking: { signal?: AbortSignal; ended?: "answered" | "aborted" }[] = [];
  class RecordingClient extends ConsulClient {
    override async blockingGet(...args: Parameters<ConsulClient["blockingGet"]>) {
      if (args[1].index === 0) return await super.blockingGet(...args);
      const record: (typeof blocking)[number] = { signal: args[1].signal };
      blocking.push(record);
      try {
        const answer = await super.blockingGet(...args);
        record.ended = "answered";
        return answer;
      } catch (error) {
        record.ended = args[1].signal?.aborted ? "aborted" : "answered";
        throw error;
      }
    }
  }
  const watch = new ConsulWatch("/v1/catalog/services", {
    consul: new RecordingClient(consul.url),
    waitSeconds: 60,
  });
  try {
    watch.start();
    await watch.ready(10_000);
    // The next request blocks in Consul for up to a minute (nothing changes); close() must abort it.
    await until("the watch to send its blocking query", () => blocking.length === 1);
    let closed = false;
    const closing = watch.close().then(() => closed = true);
    // A bound far below the query's minute: close() that waits the query out fails here.
    await until("close() to return", () => closed, { timeoutMs: 10_000 });
    await closing;
    assert.equal(blocking.length, 1);
    assert.equal(blocking[0].ended, "aborted");
    assert.equal(blocking[0].signal?.aborted, true);
  } finally {
    await watch.close();
    await consul.stop();
  }
});

Deno.test("ConsulWatch sees services change in a real Consul and survives its restart", async (t) => {
  const consul = await startConsulDev();
  const values: Record<string, unknown>[] = [];
  const watch = new ConsulWatch<Record<string, unknown>>("/v1/catalog/services", {
    consul: new ConsulClient(consul.url),
    waitSeconds: 5,
    baseBackoffMs: 50,
    maxBackoffMs: 500,
  });
  watch.onChange((value) => values.push(value));
  const register = async (name: string) => {
    const response = await fetch(`${consul.url}/v1/agent/service/register`, {
      method: "PUT",
      body: JSON.stringify({ Name: name, ID: name, Port: 1 }),
    });
    await response.body?.cancel();
    assert.ok(response.ok);
  };
  try {
    watch.start();
    await watch.ready(10_000);
    await t.step("a registered service shows up", async () => {
      // Enough writes that the index after a restart is lower than before it.
      for (let index = 0; index < 20; index++) await register(`watched-${index}`);
      await until("the service", () => "watched-19" in (watch.value ?? {}));
    });
    const indexBefore = watch.index;
    await t.step("after a restart the index goes backwards and the new state is read", async () => {
      await consul.restart();
      await until("the fresh state", () => !("watched-19" in (watch.value ?? {})));
      await register("again");
      await until("the new service", () => "again" in (watch.value ?? {}));
      assert.ok(watch.index < indexBefore, `${watch.index} < ${indexBefore}`);
    });
  } finally {
    await watch.close();
    await consul.stop();
  }
});
