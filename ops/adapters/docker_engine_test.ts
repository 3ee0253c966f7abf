import assert from "node:assert/strict";
import { demuxLog, DockerEngine, sinceSeconds } from "./docker_engine.ts";

function frame(stream: number, text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.length);
  out.set(payload, 8);
  return out;
}

Deno.test("demuxLog() joins the stdout and stderr frames of a log answer, in order", () => {
  const bytes = new Uint8Array([
    ...frame(1, "2026-01-01T00:00:01Z out\n"),
    ...frame(2, "2026-01-01T00:00:02Z err\n"),
    ...frame(1, "2026-01-01T00:00:03Z é\n"),
  ]);
  assert.equal(
    demuxLog(bytes),
    "2026-01-01T00:00:01Z out\n2026-01-01T00:00:02Z err\n2026-01-01T00:00:03Z é\n",
  );
  assert.equal(demuxLog(new TextEncoder().encode("a TTY's plain text\n")), "a TTY's plain text\n");
  assert.equal(demuxLog(new Uint8Array()), "");
});

Deno.test("sinceSeconds() reads --since as the docker CLI does", async (t) => {
  const now = Date.parse("2026-01-01T01:00:00Z");
  const cases: [string, number][] = [
    ["10m", now / 1000 - 600],
    ["1h30m", now / 1000 - 5400],
    ["90s", now / 1000 - 90],
    ["1767225600", 1767225600],
    ["2026-01-01T00:30:00Z", Date.parse("2026-01-01T00:30:00Z") / 1000],
  ];
  for (const [since, expected] of cases) {
    await t.step(since, () => assert.equal(sinceSeconds(since, now), expected));
  }
  await t.step("nonsense is a usage error", () => {
    assert.throws(() => sinceSeconds("yesterday-ish", now), /^OpsError: Invalid --since/);
  });
});

/** A stand-in engine on a UNIX socket that records the requests and answers from `routes`. */
async function withEngine(
  routes: Record<string, (body: unknown) => unknown>,
  test: (engine: DockerEngine, requests: { route: string; body: unknown }[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "engine-" });
  const requests: { route: string; body: unknown }[] = [];
  const server = Deno.serve(
    { path: `${dir}/docker.sock`, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      const route = `${request.method} ${url.pathname.replace(/^\/v[\d.]+/, "")}${url.search}`;
      const text = await request.text();
      const body = text === "" ? undefined : JSON.parse(text);
      requests.push({ route, body });
      const answer = routes[route];
      if (!answer) return Response.json({ message: `no route ${route}` }, { status: 404 });
      return Response.json(answer(body) ?? {});
    },
  );
  try {
    await test(new DockerEngine({ socketPath: `${dir}/docker.sock` }), requests);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("DockerEngine.scale() updates the spec it read, at its version, changing replicas only", async () => {
  const spec = {
    Name: "st_echo-agent",
    Labels: { "platform.autoscale.max": "3" },
    Mode: { Replicated: { Replicas: 3 } },
    TaskTemplate: { ContainerSpec: { Image: "p/echo:1" } },
  };
  await withEngine({
    "GET /services/st_echo-agent": () => ({ ID: "s1", Version: { Index: 42 }, Spec: spec }),
    "POST /services/st_echo-agent/update?version=42": () => ({}),
  }, async (engine, requests) => {
    await engine.scale({ "st_echo-agent": 1 });
    assert.deepEqual(requests.at(-1), {
      route: "POST /services/st_echo-agent/update?version=42",
      body: { ...spec, Mode: { Replicated: { Replicas: 1 } } },
    });
  });
});

Deno.test("DockerEngine.updateNode() keeps the node's other labels and names the version", async () => {
  await withEngine({
    "GET /nodes/n1": () => ({
      ID: "n1",
      Version: { Index: 7 },
      Spec: { Role: "worker", Availability: "active", Labels: { keep: "me" } },
    }),
    "POST /nodes/n1/update?version=7": () => ({}),
  }, async (engine, requests) => {
    await engine.updateNode("n1", (spec) => ({ ...spec, Labels: { ...spec.Labels, add: "x" } }));
    assert.deepEqual(requests.at(-1), {
      route: "POST /nodes/n1/update?version=7",
      body: { Role: "worker", Availability: "active", Labels: { keep: "me", add: "x" } },
    });
  });
});

Deno.test("DockerEngine secrets: exact names only, the value base64 in the body and not the URL", async () => {
  await withEngine({
    "GET /secrets?filters=%7B%22name%22%3A%5B%22st_key%22%5D%7D": () => [
      { ID: "x2", Spec: { Name: "st_key_old" } },
    ],
    "POST /secrets/create": () => ({ ID: "x3" }),
  }, async (engine, requests) => {
    // The engine's name filter matches a prefix: "st_key_old" is not "st_key".
    assert.equal(await engine.secretId("st_key"), undefined);
    await engine.createSecret("st_key", new TextEncoder().encode("s3cret"), { stack: "st" });
    assert.deepEqual(requests.at(-1), {
      route: "POST /secrets/create",
      body: { Name: "st_key", Labels: { stack: "st" }, Data: btoa("s3cret") },
    });
  });
});

Deno.test("DockerEngine names what failed with the engine's own message", async () => {
  await withEngine({}, async (engine) => {
    await assert.rejects(
      engine.scale({ "st_gone": 2 }),
      /^OpsError: Cannot scale "st_gone" to 2: no route GET \/services\/st_gone/,
    );
  });
});
