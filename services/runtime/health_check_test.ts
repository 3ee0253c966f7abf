import assert from "node:assert/strict";

const SCRIPT = new URL("./health_check.sh", import.meta.url).pathname;

async function probe(
  port: number,
  env: Record<string, string> = {},
  path: string | null = "/readyz",
) {
  const output = await new Deno.Command("bash", {
    args: [SCRIPT, String(port), ...(path === null ? [] : [path])],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

function serve(handler: (request: Request) => Response): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
}

Deno.test("health_check.sh passes on 200 and fails on any other answer", async () => {
  let ready = false;
  const server = serve(() => new Response("x", { status: ready ? 200 : 503 }));
  try {
    const down = await probe(server.addr.port);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /answered "503"/);
    ready = true;
    assert.equal((await probe(server.addr.port)).code, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("health_check.sh asks Consul about SERVICE_ID and ignores an absent Consul", async () => {
  const service = serve(() => new Response("ok"));
  let consulStatus = 503;
  const consul = serve((request) => {
    const wanted = new URL(request.url).pathname === "/v1/agent/health/service/id/router-1";
    return new Response("[]", { status: wanted ? consulStatus : 500 });
  });
  try {
    const env = {
      SERVICE_ID: "router-1",
      CONSUL_HTTP_ADDR: `http://127.0.0.1:${consul.addr.port}`,
    };
    const critical = await probe(service.addr.port, env);
    assert.equal(critical.code, 1);
    assert.match(critical.stderr, /"router-1" is critical in Consul/);
    consulStatus = 200;
    assert.equal((await probe(service.addr.port, env)).code, 0);
    const noConsul = { SERVICE_ID: "router-1", CONSUL_HTTP_ADDR: "http://127.0.0.1:1" };
    assert.equal((await probe(service.addr.port, noConsul)).code, 0);
  } finally {
    await service.shutdown();
    await consul.shutdown();
  }
});

Deno.test("health_check.sh without a path passes when the port accepts connections", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const connection of listener) connection.close();
  })().catch(() => {});
  try {
    assert.equal((await probe(port, {}, null)).code, 0);
  } finally {
    listener.close();
    await accepting;
  }
  const closed = await probe(port, {}, null);
  assert.equal(closed.code, 1);
  assert.match(closed.stderr, /nothing accepts connections on port/);
});

Deno.test("health_check.sh rejects bad arguments with exit code 2", async () => {
  for (const args of [["x"], ["80", "readyz"], ["80", "/a", "/b"], []]) {
    const output = await new Deno.Command("bash", { args: [SCRIPT, ...args], stderr: "piped" })
      .output();
    assert.equal(output.code, 2, args.join(" "));
  }
});

Deno.test("health_check.sh sends the instance's Consul token and fails when Consul refuses it", async () => {
  const service = serve(() => new Response("ok"));
  const seen: (string | null)[] = [];
  const consul = serve((request) => {
    const token = request.headers.get("x-consul-token");
    seen.push(token);
    return new Response("[]", { status: token === "good-token" ? 200 : 403 });
  });
  const tokenFile = await Deno.makeTempFile();
  try {
    const base = { SERVICE_ID: "echo-1", CONSUL_HTTP_ADDR: `http://127.0.0.1:${consul.addr.port}` };
    assert.equal(
      (await probe(service.addr.port, { ...base, CONSUL_HTTP_TOKEN: "good-token" })).code,
      0,
    );
    await Deno.writeTextFile(tokenFile, "good-token\n");
    assert.equal(
      (await probe(service.addr.port, { ...base, CONSUL_HTTP_TOKEN_FILE: tokenFile })).code,
      0,
    );
    const refused = await probe(service.addr.port, { ...base, CONSUL_HTTP_TOKEN: "wrong" });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Consul refused the token for "echo-1"/);
    assert.deepEqual(seen, ["good-token", "good-token", "wrong"]);
  } finally {
    await service.shutdown();
    await consul.shutdown();
    await Deno.remove(tokenFile);
  }
});

Deno.test("health_check.sh asks the agent of its own node (CONSUL_NODE), not any server", async () => {
  const service = serve(() => new Response("ok"));
  // The node's agent, which holds the registration...
  const agent = serve((request) =>
    new Response("[]", {
      status: new URL(request.url).pathname === "/v1/agent/health/service/id/echo-1" ? 200 : 500,
    })
  );
  const port = agent.addr.port;
  // ...and a server on another node (same port, another address): it does not know the instance,
  // and tells where platform-2's agent is.
  const server = Deno.serve({ hostname: "127.0.0.2", port, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/v1/catalog/node/platform-2") {
      return Response.json({
        Node: { ID: "n", Node: "platform-2", Address: "127.0.0.1", TaggedAddresses: {} },
        Services: { "echo-1": { Address: "10.9.9.9" } },
      });
    }
    return new Response("[]", { status: 404 });
  });
  try {
    const base = { SERVICE_ID: "echo-1", CONSUL_HTTP_ADDR: `http://127.0.0.2:${port}` };
    const anyServer = await probe(service.addr.port, base, null);
    assert.equal(anyServer.code, 1);
    assert.match(anyServer.stderr, /"echo-1" is missing from Consul/);
    const ownNode = await probe(service.addr.port, { ...base, CONSUL_NODE: "platform-2" }, null);
    assert.equal(ownNode.code, 0, ownNode.stderr);
  } finally {
    await service.shutdown();
    await agent.shutdown();
    await server.shutdown();
  }
});
