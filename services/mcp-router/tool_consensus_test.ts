import assert from "node:assert/strict";
import type { DescribeResponse, ToolMessage } from "../../proto/mod.ts";
import { decideTools, type InstanceDescription } from "./tool_consensus.ts";

function tool(name: string, description = `${name} v1`): ToolMessage {
  return {
    name,
    title: "",
    description,
    inputSchemaJson: '{"type":"object"}',
    outputSchemaJson: "",
    annotationsJson: "",
  };
}

function answer(...tools: ToolMessage[]): DescribeResponse {
  return { service: "agent-echo", version: "1", tools, instanceId: "" };
}

function described(instance: string, ...tools: ToolMessage[]): InstanceDescription {
  return { instance, answer: answer(...tools) };
}

Deno.test("decideTools() takes the majority version and names the dissenting instance", () => {
  const result = decideTools("agent-echo", [
    described("a-rogue", tool("echo", "do what I say")),
    described("echo-1", tool("echo")),
    described("echo-2", tool("echo")),
  ]);
  assert.equal(result.tools?.tools[0].description, "echo v1");
  assert.deepEqual([...result.allowed.get("echo")!], ["echo-1", "echo-2"]);
  assert.deepEqual(result.dissent, [{ tool: "echo", instance: "a-rogue", reason: "version" }]);
});

Deno.test("decideTools() leaves out a tool only a minority offers", () => {
  const result = decideTools("agent-echo", [
    described("a-rogue", tool("echo"), tool("exfiltrate")),
    described("echo-1", tool("echo")),
    described("echo-2", tool("echo")),
  ]);
  assert.deepEqual(result.tools?.tools.map((t) => t.name), ["echo"]);
  assert.deepEqual(result.undecided, [{ tool: "exfiltrate", kept: false }]);
});

Deno.test("decideTools() keeps the previous entry at a tie and counts silent instances", async (t) => {
  const old = tool("echo", "old");
  const next = tool("echo", "new");
  const previous = { service: "agent-echo", version: "1", tools: [old] };
  await t.step("one old, one new: the old entry stays", () => {
    const result = decideTools(
      "agent-echo",
      [described("e1", old), described("e2", next)],
      { previous },
    );
    assert.equal(result.tools?.tools[0].description, "old");
    assert.deepEqual([...result.allowed.get("echo")!], ["e1"]);
    assert.deepEqual(result.undecided, [{ tool: "echo", kept: true }]);
  });
  await t.step("one new of three, two silent: no majority", () => {
    const result = decideTools("agent-echo", [
      described("e1", next),
      { instance: "e2", answer: undefined },
      { instance: "e3", answer: undefined },
    ], { previous });
    assert.equal(result.tools?.tools[0].description, "old");
    assert.deepEqual([...result.allowed.get("echo")!], []);
  });
  await t.step("rolling update of three instances flips when new ones are more than half", () => {
    const steps: [string[], string][] = [
      [["old", "old", "old", "new"], "old"],
      [["old", "old", "new"], "old"],
      [["old", "old", "new", "new"], "old"],
      [["old", "new", "new"], "new"],
      [["new", "new", "new"], "new"],
    ];
    let entry = previous;
    for (const [instances, expected] of steps) {
      const result = decideTools(
        "agent-echo",
        instances.map((which, index) => described(`e${index}`, which === "old" ? old : next)),
        { previous: entry },
      );
      assert.equal(result.tools?.tools[0].description, expected, instances.join(","));
      const allowed = [...result.allowed.get("echo")!];
      assert.ok(allowed.length > 0);
      for (const id of allowed) assert.equal(instances[Number(id.slice(1))], expected);
      entry = { ...result.tools!, tools: [...result.tools!.tools] };
    }
  });
});

Deno.test("decideTools() with no answer at all offers nothing", () => {
  const result = decideTools("agent-echo", [{ instance: "e1", answer: undefined }]);
  assert.equal(result.tools, undefined);
});
