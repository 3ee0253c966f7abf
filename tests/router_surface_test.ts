/**
 * The MCP surface beyond plain tools through a router, with real processes: content blocks, log
 * levels, sampling relayed to the right call, subscriptions that outlive their backend instance,
 * conflicts between services, and the 2026-07-28 era.
 */
import assert from "node:assert/strict";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { delay } from "../services/runtime/delay.ts";
import {
  connectV1,
  connectV2,
  resultText,
  type RouterProcess,
  sessionKeyText,
  startRouter,
} from "./router_harness.ts";

/** A 2025 client that answers sampling by echoing the prompt, as a model would answer it. */
async function samplingClient(url: URL): Promise<ClientV1> {
  const client = new ClientV1({ name: "surface-test", version: "1.0.0" }, {
    capabilities: { sampling: {}, elicitation: {} },
  });
  client.setRequestHandler(
    CreateMessageRequestSchema,
    async (request: { params: { messages: { content: unknown }[] } }) => {
      const text = (request.params.messages[0].content as { text: string }).text;
      // Answer odd prompts first, so answers cross on the wire.
      await delay(Number(text.split(" ").at(-1)) % 2 === 0 ? 150 : 10);
      return {
        role: "assistant",
        content: { type: "text", text: `reply to ${text}` },
        model: "test-model",
        stopReason: "endTurn",
      };
    },
  );
  await client.connect(new TransportV1(url));
  return client;
}

async function waitForTools(url: URL, names: string[]): Promise<void> {
  const { client } = await connectV1(url);
  try {
    await eventually(`tools ${names}`, async () => {
      const { tools } = await client.listTools();
      return tools.map((tool: { name: string }) => tool.name);
    }, (served) => names.every((name) => served.includes(name)));
  } finally {
    await client.close();
  }
}

Deno.test("mcp-router serves resources, prompts, completion, logs and sampling", async (t) => {
  const consul = await startConsulDev();
  const backends = [
    startService("conformance-server", {
      consulUrl: consul.url,
      id: "conf-1",
      env: { CONFORMANCE_WATCH_INTERVAL_MS: "200" },
    }),
    startService("echo-agent", { consulUrl: consul.url, id: "echo-1" }),
  ];
  let router: RouterProcess | undefined;
  try {
    router = await startRouter(consul.url, "router-surface", {
      ROUTER_SESSION_KEY: sessionKeyText(),
    });
    await waitForTools(router.url, ["test_sampling", "echo"]);

    await t.step("older services keep working beside new ones", async () => {
      const { client } = await connectV1(router!.url);
      const result = await client.callTool({ name: "echo", arguments: { message: "hi" } });
      assert.equal(JSON.parse(resultText(result)).message, "hi");
      assert.deepEqual(client.getServerCapabilities()?.completions, {});
      await client.close();
    });

    await t.step(
      "sampling answers go back to the call that asked, concurrent calls apart",
      async () => {
        const client = await samplingClient(router!.url);
        const prompts = Array.from({ length: 6 }, (_, i) => `prompt ${i}`);
        const results = await Promise.all(
          prompts.map((prompt) =>
            client.callTool({ name: "test_sampling", arguments: { prompt } })
          ),
        );
        assert.deepEqual(
          results.map(resultText),
          prompts.map((prompt) => `LLM response: reply to ${prompt}`),
        );
        await client.close();
      },
    );

    await t.step("logging/setLevel filters what the tool logs", async () => {
      const { client } = await connectV1(router!.url);
      const seen: string[] = [];
      client.setNotificationHandler(
        LoggingMessageNotificationSchema,
        (notification: { params: { level: string; data: unknown } }) => {
          seen.push(`${notification.params.level}:${notification.params.data}`);
        },
      );
      await client.setLoggingLevel("warning");
      await client.callTool({ name: "test_tool_with_logging", arguments: {} });
      assert.deepEqual(seen, []);
      await client.setLoggingLevel("info");
      await client.callTool({ name: "test_tool_with_logging", arguments: {} });
      assert.deepEqual(seen, [
        "info:Tool execution started",
        "info:Tool processing data",
        "info:Tool execution completed",
      ]);
      await client.close();
    });

    await t.step("an unknown resource is an error, a template read substitutes", async () => {
      const { client } = await connectV1(router!.url);
      // The SDK picks the code (-32602 in 2025-11-25 and later); the message names the URI.
      await assert.rejects(
        () => client.readResource({ uri: "test://nothing" }),
        /Unknown resource "test:\/\/nothing"/,
      );
      const read = await client.readResource({ uri: "test://template/7/data" });
      assert.equal(JSON.parse(read.contents[0].text as string).id, "7");
      const completion = await client.complete({
        ref: { type: "ref/resource", uri: "test://template/{id}/data" },
        argument: { name: "id", value: "1" },
      });
      assert.deepEqual(completion.completion.values.slice(0, 3), ["1", "10", "11"]);
      await client.close();
    });

    await t.step("2026-07-28 clients get content blocks, resources, prompts", async () => {
      const client = await connectV2(router!.url);
      const image = await client.callTool({ name: "test_image_content", arguments: {} });
      assert.equal((image.content as { type: string }[])[0].type, "image");
      const { resources } = await client.listResources();
      assert.ok(resources.some((r: { uri: string }) => r.uri === "test://static-binary"));
      const binary = await client.readResource({ uri: "test://static-binary" });
      assert.equal((binary.contents[0] as { blob: string }).blob.length > 0, true);
      const prompt = await client.getPrompt({
        name: "test_prompt_with_arguments",
        arguments: { arg1: "a", arg2: "b" },
      });
      assert.match(JSON.stringify(prompt.messages), /arg1='a', arg2='b'/);
      await client.close();
    });

    await t.step(
      "2026-07-28 clients answer sampling and elicitation in input_required rounds",
      async () => {
        const client = new ClientV2({ name: "surface-v2", version: "1.0.0" }, {
          capabilities: { sampling: {}, elicitation: { form: {} } },
          versionNegotiation: { mode: { pin: "2026-07-28" } },
        });
        let asked = 0;
        client.setRequestHandler("sampling/createMessage", (request) => {
          asked++;
          const text = (request.params.messages[0].content as { text: string }).text;
          return {
            role: "assistant",
            content: { type: "text", text: `reply to ${text}` },
            model: "test-model",
          };
        });
        client.setRequestHandler("elicitation/create", () => ({
          action: "accept",
          content: { response: "yes" },
        }));
        await client.connect(new TransportV2(router!.url));
        const [first, second] = await Promise.all([
          client.callTool({ name: "test_sampling", arguments: { prompt: "one" } }),
          client.callTool({ name: "test_sampling", arguments: { prompt: "two" } }),
        ]);
        assert.equal(resultText(first), "LLM response: reply to one");
        assert.equal(resultText(second), "LLM response: reply to two");
        assert.equal(asked, 2);
        const elicited = await client.callTool({
          name: "test_elicitation",
          arguments: { message: "ok?" },
        });
        assert.equal(
          resultText(elicited),
          'User response: action=accept, content={"response":"yes"}',
        );
        await client.close();
      },
    );
  } finally {
    await router?.stop();
    await Promise.all(backends.map((backend) => backend.stop()));
    await consul.stop();
  }
});

Deno.test("a resource subscription outlives the backend instance that served it", async () => {
  const consul = await startConsulDev();
  const env = { CONFORMANCE_WATCH_INTERVAL_MS: "200" };
  const first = startService("conformance-server", { consulUrl: consul.url, id: "conf-1", env });
  let second: ReturnType<typeof startService> | undefined;
  let router: RouterProcess | undefined;
  let client: ClientV1 | undefined;
  try {
    router = await startRouter(consul.url, "router-sub", { ROUTER_SESSION_KEY: sessionKeyText() });
    await waitForTools(router.url, ["test_sampling"]);
    client = new ClientV1({ name: "subscriber", version: "1.0.0" });
    let updates = 0;
    client.setNotificationHandler(
      ResourceUpdatedNotificationSchema,
      (notification: { params: { uri: string } }) => {
        if (notification.params.uri === "test://watched-resource") updates++;
      },
    );
    const transport = new TransportV1(router.url);
    await client.connect(transport);
    await client.subscribeResource({ uri: "test://watched-resource" });
    await eventually("updates from conf-1", () => Promise.resolve(updates), (n) => n >= 2);
    second = startService("conformance-server", { consulUrl: consul.url, id: "conf-2", env });
    await eventually("conf-2 passing", async () => {
      const response = await fetch(`${consul.url}/v1/health/service/tool-conformance?passing`);
      return (await response.json() as unknown[]).length;
    }, (n) => n === 2);
    await first.stop();
    const before = updates;
    await eventually(
      "updates after conf-1 stopped",
      () => Promise.resolve(updates),
      (n) => n >= before + 3,
    );
    await client.unsubscribeResource({ uri: "test://watched-resource" });

    // A 2026-07-28 client follows it through subscriptions/listen.
    const modern = await connectV2(router.url);
    let modernUpdates = 0;
    modern.setNotificationHandler("notifications/resources/updated", (notification) => {
      if (notification.params.uri === "test://watched-resource") modernUpdates++;
    });
    const subscription = await modern.listen({
      resourceSubscriptions: ["test://watched-resource"],
    });
    await eventually(
      "updates on the listen stream",
      () => Promise.resolve(modernUpdates),
      (n) => n >= 2,
    );
    await subscription.close();
    await modern.close();
    // The backend watch ends with the last stream that followed the resource.
    await eventually("no backend watch left", async () => {
      const text = await (await fetch(`http://127.0.0.1:${router!.opsPort}/metrics`)).text();
      return Number(/^mcp_router_resource_watches (\d+)/m.exec(text)?.[1]);
    }, (open) => open === 0);
  } finally {
    await client?.close();
    await router?.stop();
    await first.stop();
    await second?.stop();
    await consul.stop();
  }
});

Deno.test("prompts two services offer are prefixed; resources they both claim are served by neither", async () => {
  const consul = await startConsulDev();
  const backends = [
    startService("conformance-server", { consulUrl: consul.url, id: "conf-a" }),
    startService("conformance-server", {
      consulUrl: consul.url,
      id: "conf-b",
      env: { CONFORMANCE_SERVICE_NAME: "tool-conformance-copy" },
    }),
  ];
  let router: RouterProcess | undefined;
  try {
    router = await startRouter(consul.url, "router-conflict", {
      ROUTER_SESSION_KEY: sessionKeyText(),
    });
    await waitForTools(router.url, [
      "tool-conformance.test_sampling",
      "tool-conformance-copy.test_sampling",
    ]);
    const { client } = await connectV1(router.url);
    const { prompts } = await client.listPrompts();
    const names = prompts.map((prompt: { name: string }) => prompt.name);
    assert.ok(names.includes("tool-conformance.test_simple_prompt"), String(names));
    assert.ok(names.includes("tool-conformance-copy.test_simple_prompt"), String(names));
    // Nothing is left to serve, so the capability is not advertised.
    assert.equal(client.getServerCapabilities()?.resources, undefined);
    const rendered = await client.getPrompt({ name: "tool-conformance-copy.test_simple_prompt" });
    assert.equal(rendered.messages.length, 1);
    await client.close();
    await eventually(
      "conflict logged",
      () => Promise.resolve(router!.output()),
      (text) => text.includes("Several services offer the same resource"),
    );
  } finally {
    await router?.stop();
    await Promise.all(backends.map((backend) => backend.stop()));
    await consul.stop();
  }
});
