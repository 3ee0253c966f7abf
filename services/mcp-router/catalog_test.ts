import assert from "node:assert/strict";
import type { ToolMessage } from "../../proto/mod.ts";
import { listTools, mergeCatalog, type ServiceTools } from "./catalog.ts";

function tool(name: string, extra: Partial<ToolMessage> = {}): ToolMessage {
  return {
    name,
    title: name.toUpperCase(),
    description: `The ${name} tool`,
    inputSchemaJson: JSON.stringify({ type: "object", properties: { x: { type: "string" } } }),
    outputSchemaJson: JSON.stringify({ type: "object" }),
    annotationsJson: "",
    ...extra,
  };
}

function service(name: string, ...tools: ToolMessage[]): ServiceTools {
  return { service: name, version: "1.0.0", tools };
}

Deno.test("mergeCatalog() serves the union of every service's tools, sorted", () => {
  const catalog = mergeCatalog([
    service("worker-itinerary", tool("plan_itinerary")),
    service("agent-echo", tool("echo")),
    service("tool-weather", tool("get_weather")),
  ]);
  assert.deepEqual(catalog.tools.map((entry) => entry.name), [
    "echo",
    "get_weather",
    "plan_itinerary",
  ]);
  assert.equal(catalog.byName.get("echo")?.service, "agent-echo");
  assert.deepEqual(catalog.conflicts, []);
  assert.deepEqual(catalog.problems, []);
});

Deno.test("mergeCatalog() prefixes a tool name two services share, deterministically", () => {
  const a = service("agent-echo", tool("echo"));
  const b = service("agent-echo-v2", tool("echo"), tool("shout"));
  const forward = mergeCatalog([a, b]);
  const backward = mergeCatalog([b, a]);
  assert.deepEqual(forward.tools.map((entry) => entry.name), [
    "agent-echo-v2.echo",
    "agent-echo.echo",
    "shout",
  ]);
  assert.equal(forward.fingerprint, backward.fingerprint);
  assert.deepEqual(forward.conflicts, ["echo"]);
  const prefixed = forward.byName.get("agent-echo-v2.echo");
  assert.equal(prefixed?.backendName, "echo");
  assert.equal(prefixed?.service, "agent-echo-v2");
});

Deno.test("mergeCatalog() leaves out a tool with a broken schema and says why", () => {
  const catalog = mergeCatalog([
    service("agent-echo", tool("echo"), tool("broken", { inputSchemaJson: "{nope" })),
    service("tool-x", tool("array", { inputSchemaJson: '{"type":"array"}' })),
  ]);
  assert.deepEqual(catalog.tools.map((entry) => entry.name), ["echo"]);
  assert.equal(catalog.problems.length, 2);
  assert.match(catalog.problems[0], /input schema of tool "broken" of service "agent-echo"/);
  assert.match(catalog.problems[1], /type must be "object"/);
});

Deno.test("mergeCatalog() fingerprints change with the tools, not with the order", () => {
  const one = mergeCatalog([service("a", tool("x"), tool("y"))]);
  const same = mergeCatalog([service("a", tool("y"), tool("x"))]);
  const changed = mergeCatalog([service("a", tool("x"), tool("y", { description: "new" }))]);
  assert.equal(one.fingerprint, same.fingerprint);
  assert.notEqual(one.fingerprint, changed.fingerprint);
});

Deno.test("listTools() gives MCP tool definitions with schemas and annotations", () => {
  const catalog = mergeCatalog([
    service("agent-echo", tool("echo", { annotationsJson: '{"readOnlyHint":true}' })),
  ]);
  assert.deepEqual(listTools(catalog), {
    tools: [{
      name: "echo",
      title: "ECHO",
      description: "The echo tool",
      inputSchema: { type: "object", properties: { x: { type: "string" } } },
      outputSchema: { type: "object" },
      annotations: { readOnlyHint: true },
    }],
  });
});
