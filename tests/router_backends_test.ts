import * as grpc from "@grpc/grpc-js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import assert from "node:assert/strict";
import { CAPABILITY_SERVICE } from "../proto/mod.ts";
import { freePort, startConsulDev } from "./helpers/consul_dev.ts";
import { type ServiceProcess, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import {
  backendInFlight,
  connectV1,
  connectV2,
  LIFTED_CLIENT_LIMITS,
  resultText,
  startRouter,
  watchListens,
} from "./router_harness.ts";

/** A one-tool backend served in-process, registered in Consul without a check (so passing). */
async function startShoutBackend(consulUrl: string): Promise<() => Promise<void>> {
  const server = new grpc.Server();
  server.addService(CAPABILITY_SERVICE, {
    describe(_call: unknown, callback: grpc.sendUnaryData<unknown>) {
      callback(null, {
        service: "agent-shout",
        version: "1.0.0",
        instanceId: "shout-1",
        tools: [{
          name: "shout",
          title: "Shout",
          description: "Upper-cases the message",
          inputSchemaJson: JSON.stringify({
            type: "object",
            properties: { message: { type: "string" } },
            required: ["message"],
          }),
          outputSchemaJson: "",
          annotationsJson: "",
        }],
      });
    },
    invoke(
      call: grpc.ServerUnaryCall<{ argumentsJson: string }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      const args = JSON.parse(call.request.argumentsJson);
      callback(null, {
        resultJson: JSON.stringify(args.message.toUpperCase()),
        instanceId: "shout-1",
      });
    },
    invokeStream(call: grpc.ServerWritableStream<unknown, unknown>) {
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, bound) => error ? reject(error) : resolve(bound),
    )
  );
  const register = await fetch(`${consulUrl}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify({
      Name: "agent-shout",
      ID: "shout-1",
      Address: "127.0.0.1",
      Port: port,
      Tags: ["platform", "agent"],
    }),
  });
  assert.equal(register.status, 200);
  await register.body?.cancel();
  return async () => {
    const response = await fetch(`${consulUrl}/v1/agent/service/deregister/shout-1`, {
      method: "PUT",
    });
    await response.body?.cancel();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  };
}

async function waitForTools(url: URL, count: number): Promise<void> {
  const probe = await connectV2(url);
  try {
    await eventually(
      `${count} tools`,
      async () => (await probe.listTools()).tools.length,
      (n) => n >= count,
    );
  } finally {
    await probe.close();
  }
}

Deno.test("mcp-router tells listening clients when a new backend brings a new tool", async () => {
  const consul = await startConsulDev();
  const echo = startService("echo-agent", { consulUrl: consul.url, id: "echo-1" });
  const router = await startRouter(consul.url, "router-a");
  let stopShout: (() => Promise<void>) | undefined;
  try {
    await waitForTools(router.url, 1);
    const listens = watchListens();
    const v1 = await connectV1(router.url, { fetch: listens.fetch });
    let v1Changed = 0;
    v1.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      v1Changed++;
    });
    let v2Names: string[] = [];
    const v2 = await connectV2(router.url, {
      onToolsChanged: (names) => v2Names = names,
      fetch: listens.fetch,
    });
    // The listening streams must be open before the catalog changes.
    await listens.opened(2);
    stopShout = await startShoutBackend(consul.url);
    await eventually(
      "v2 sees shout",
      () => Promise.resolve(v2Names),
      (names) => names.includes("shout"),
    );
    await eventually("v1 told", () => Promise.resolve(v1Changed), (count) => count > 0);
    const names = (await v1.client.listTools()).tools.map((tool: { name: string }) => tool.name);
    assert.deepEqual(names, ["echo", "shout"]);
    const result = await v1.client.callTool({ name: "shout", arguments: { message: "hey" } });
    assert.equal(resultText(result), '"HEY"');
    await v1.client.close();
    await v2.close();
  } finally {
    await stopShout?.();
    await router.stop();
    await echo.stop();
    await consul.stop();
  }
});

Deno.test("mcp-router spreads calls with each strategy and survives a killed instance", async (t) => {
  const consul = await startConsulDev();
  const echoes: ServiceProcess[] = ["echo-1", "echo-2", "echo-3"].map((id) =>
    startService("echo-agent", { consulUrl: consul.url, id })
  );
  try {
    for (const strategy of ["round-robin", "least-outstanding", "random", "weighted"]) {
      await t.step(`${strategy}: 300 calls use every instance`, async () => {
        const router = await startRouter(consul.url, `router-${strategy}`, {
          ...LIFTED_CLIENT_LIMITS,
          LB_STRATEGY_AGENT_ECHO: strategy,
        });
        try {
          await waitForTools(router.url, 1);
          const client = await connectV2(router.url);
          await eventually("three echo instances", async () => {
            const seen = new Set<string>();
            for (let i = 0; i < 9; i++) {
              const result = await client.callTool({ name: "echo", arguments: { message: "x" } });
              seen.add((result.structuredContent as { instance_id: string }).instance_id);
            }
            return seen.size;
          }, (size) => size === 3);
          const counts = new Map<string, number>();
          for (let batch = 0; batch < 30; batch++) {
            const results = await Promise.all(
              Array.from(
                { length: 10 },
                () => client.callTool({ name: "echo", arguments: { message: "x" } }),
              ),
            );
            for (const result of results) {
              assert.equal(result.isError, undefined, resultText(result));
              const id = (result.structuredContent as { instance_id: string }).instance_id;
              counts.set(id, (counts.get(id) ?? 0) + 1);
            }
          }
          assert.deepEqual([...counts.keys()].sort(), ["echo-1", "echo-2", "echo-3"]);
          if (strategy === "least-outstanding") {
            const slow = client.callTool({
              name: "echo",
              arguments: { message: "s", delay_ms: 3000 },
            });
            // The slow call is with its instance before the fast ones start.
            await eventually(
              "the slow call in flight",
              () => backendInFlight(router, "agent-echo"),
              (count) => count === 1,
            );
            const fast: string[] = [];
            for (let i = 0; i < 30; i++) {
              const result = await client.callTool({ name: "echo", arguments: { message: "f" } });
              fast.push((result.structuredContent as { instance_id: string }).instance_id);
            }
            const busy = ((await slow).structuredContent as { instance_id: string }).instance_id;
            assert.equal(fast.filter((id) => id === busy).length, 0);
          }
          await client.close();
        } finally {
          await router.stop();
        }
      });
    }

    await t.step("kill -9 of one echo instance during 500 calls: 0 failed calls", async () => {
      const router = await startRouter(consul.url, "router-kill", LIFTED_CLIENT_LIMITS);
      try {
        await waitForTools(router.url, 1);
        const client = await connectV2(router.url);
        let failed = 0;
        const errors: string[] = [];
        let done = 0;
        const deadline = Date.now() + 60_000;
        const worker = async (): Promise<void> => {
          while (done < 500 && Date.now() < deadline) {
            done++;
            if (done === 150) echoes[0].kill("SIGKILL");
            const result = await client.callTool({ name: "echo", arguments: { message: "k" } })
              .catch((error) => ({
                isError: true,
                content: [{ type: "text", text: String(error) }],
              }));
            if (result.isError) {
              failed++;
              errors.push(resultText(result));
            }
          }
        };
        await Promise.all(Array.from({ length: 10 }, worker));
        assert.equal(done >= 500, true);
        assert.equal(failed, 0, errors.slice(0, 3).join("\n"));
        await client.close();
      } finally {
        await router.stop();
      }
    });
  } finally {
    for (const echo of echoes) await echo.stop();
    await consul.stop();
  }
});

Deno.test("mcp-router describes a backend again when its instance could not answer at first", async () => {
  const consul = await startConsulDev();
  const port = freePort();
  // Registered and passing before anything listens on its port: the first Describe fails.
  const register = await fetch(`${consul.url}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify({
      Name: "agent-echo",
      ID: "echo-late",
      Address: "127.0.0.1",
      Port: port,
      Tags: ["platform", "agent"],
    }),
  });
  await register.body?.cancel();
  const router = await startRouter(consul.url, "router-late");
  let echo: ServiceProcess | undefined;
  try {
    await eventually(
      "a failed Describe",
      () => Promise.resolve(router.output()),
      (out) => out.includes("Describe failed"),
    );
    // The same instance comes up on that port; its registration turns critical, then passing
    // again, so the service also drops to no instance and comes back.
    echo = startService("echo-agent", { consulUrl: consul.url, id: "echo-late", port });
    await waitForTools(router.url, 1);
    const client = await connectV2(router.url);
    const result = await client.callTool({ name: "echo", arguments: { message: "late" } });
    assert.match(resultText(result), /late/);
    await client.close();
  } finally {
    await echo?.stop();
    await router.stop();
    await consul.stop();
  }
});
