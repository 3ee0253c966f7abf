import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { startService } from "./helpers/service_process.ts";
import {
  connectV1,
  connectV2,
  resultText,
  type RouterProcess,
  sessionKeyText,
  startRouter,
} from "./router_harness.ts";
import { eventually } from "./helpers/poll.ts";

Deno.test("mcp-router serves every platform tool to 2025 and 2026-07-28 clients", async (t) => {
  const consul = await startConsulDev();
  const backends = [
    startService("echo-agent", { consulUrl: consul.url, id: "echo-1" }),
    startService("weather-tool", { consulUrl: consul.url, id: "weather-1" }),
    startService("itinerary-worker", { consulUrl: consul.url, id: "itinerary-1" }),
  ];
  const key = sessionKeyText();
  const routers: RouterProcess[] = [];
  try {
    routers.push(await startRouter(consul.url, "router-a", { ROUTER_SESSION_KEY: key }));
    const router = routers[0];
    const v1 = await connectV1(router.url);
    const v2 = await connectV2(router.url);
    try {
      await t.step("tools/list shows the three tools, sorted, with schemas", async () => {
        for (const client of [v1.client, v2] as const) {
          const names = await eventually(
            "the three tools",
            async () => (await client.listTools()).tools.map((tool: { name: string }) => tool.name),
            (listed) => listed.length >= 3,
            { timeoutMs: 10_000, intervalMs: 100 },
          );
          assert.deepEqual(names, ["echo", "get_weather", "plan_itinerary"]);
        }
        const echo = (await v2.listTools()).tools.find((tool) => tool.name === "echo");
        assert.equal(echo?.inputSchema.type, "object");
        assert.ok(echo?.outputSchema);
      });

      await t.step("each call returns the right result, in both eras", async () => {
        for (const client of [v1.client, v2]) {
          const echo = await client.callTool({ name: "echo", arguments: { message: "hello" } });
          assert.equal(echo.isError, undefined);
          assert.equal((echo.structuredContent as { message: string }).message, "hello");
          const weather = await client.callTool({
            name: "get_weather",
            arguments: { city: "Lisbon", date: "2026-08-01" },
          });
          assert.equal(weather.isError, undefined, resultText(weather));
          assert.match(resultText(weather), /Lisbon/);
        }
      });

      await t.step("plan_itinerary streams progress notifications", async () => {
        const progress1: number[] = [];
        const progress2: number[] = [];
        const args = {
          destinations: [{ city: "Porto", days: 2 }, { city: "Faro", days: 1 }],
          start_date: "2026-08-01",
        };
        const a = await v1.client.callTool({ name: "plan_itinerary", arguments: args }, undefined, {
          onprogress: (p: { progress: number }) => progress1.push(p.progress),
        });
        const b = await v2.callTool({ name: "plan_itinerary", arguments: args }, {
          onprogress: (p) => progress2.push(p.progress),
        });
        assert.equal(a.isError, undefined, resultText(a));
        assert.equal(b.isError, undefined, resultText(b));
        assert.equal(progress1.length, 3);
        assert.equal(progress2.length, 3);
      });

      await t.step("bad arguments give a tool error naming the field", async () => {
        for (const client of [v1.client, v2]) {
          const result = await client.callTool({ name: "echo", arguments: { message: 42 } });
          assert.equal(result.isError, true);
          assert.match(resultText(result), /"message"/);
          const missing = await client.callTool({ name: "get_weather", arguments: { city: "X" } });
          assert.equal(missing.isError, true);
          assert.match(resultText(missing), /"date"/);
        }
      });

      await t.step(
        "a 2025 session opened on router A goes on on B, and after A stops",
        async () => {
          routers.push(await startRouter(consul.url, "router-b", { ROUTER_SESSION_KEY: key }));
          const sessionId = v1.transport.sessionId;
          assert.ok(sessionId);
          const onB = await connectV1(routers[1].url, { sessionId });
          try {
            const result = await onB.client.callTool({ name: "echo", arguments: { message: "b" } });
            assert.equal(resultText(result).includes('"b"'), true);
            assert.equal((await routers[0].stop()).code, 0);
            const again = await onB.client.callTool({ name: "echo", arguments: { message: "c" } });
            assert.equal(again.isError, undefined);
          } finally {
            await onB.client.close();
          }
        },
      );

      await t.step("a tampered session ID gives 404", async () => {
        const sessionId = v1.transport.sessionId!;
        const tampered = sessionId.slice(0, 20) + (sessionId[20] === "A" ? "B" : "A") +
          sessionId.slice(21);
        for (const id of [tampered, "nonsense"]) {
          const response = await fetch(routers[1].url, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
              "mcp-session-id": id,
              "mcp-protocol-version": "2025-11-25",
            },
            body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
          });
          assert.equal(response.status, 404);
          await response.body?.cancel();
        }
      });
    } finally {
      await v1.client.close().catch(() => {});
      await v2.close().catch(() => {});
    }
  } finally {
    for (const router of routers) await router.stop();
    for (const backend of backends) await backend.stop();
    await consul.stop();
  }
});
