import assert from "node:assert/strict";
import type { PromptMessageInfo, ResourceMessage } from "../../proto/mod.ts";
import { decideSurface, mergeSurface, resolveResource } from "./surface_catalog.ts";

function resource(uri: string): ResourceMessage {
  return { uri, name: uri, title: "", description: "", mimeType: "text/plain", watchable: false };
}

function prompt(name: string): PromptMessageInfo {
  return { name, title: "", description: `The ${name} prompt`, arguments: [], completable: false };
}

const TEMPLATE = {
  uriTemplate: "test://item/{id}",
  name: "item",
  title: "",
  description: "",
  mimeType: "",
  completable: true,
};

Deno.test("mergeSurface() prefixes shared prompts and leaves out shared resources", () => {
  const surface = mergeSurface([
    {
      service: "b",
      resources: [resource("test://x"), resource("test://b")],
      prompts: [prompt("p")],
    },
    { service: "a", resources: [resource("test://x")], prompts: [prompt("p"), prompt("q")] },
    { service: "c", resourceTemplates: [TEMPLATE] },
  ]);
  assert.deepEqual(surface.resources.map((r) => r.uri), ["test://b"]);
  assert.deepEqual(surface.prompts.map((p) => p.name), ["a.p", "b.p", "q"]);
  assert.equal(surface.promptsByName.get("b.p")?.backendName, "p");
  assert.deepEqual(surface.conflicts, [
    { kind: "prompt", name: "p", services: ["a", "b"] },
    { kind: "resource", name: "test://x", services: ["a", "b"] },
  ]);
  assert.equal(resolveResource(surface, "test://b"), "b");
  assert.equal(resolveResource(surface, "test://item/42"), "c");
  assert.equal(resolveResource(surface, "test://x"), undefined);
});

Deno.test("mergeSurface() refuses what a hostile backend describes, naming it", async (t) => {
  const cases: [string, Parameters<typeof mergeSurface>[0][number], RegExp][] = [
    ["a URI without a scheme", { service: "s", resources: [resource("no scheme")] }, /URI/],
    ["a huge URI", { service: "s", resources: [resource(`a:${"x".repeat(3000)}`)] }, /URI/],
    [
      "a template beyond level 1",
      { service: "s", resourceTemplates: [{ ...TEMPLATE, uriTemplate: "t://{+x}" }] },
      /level-1/,
    ],
    ["a prompt name with spaces", { service: "s", prompts: [prompt("a b")] }, /name/],
    [
      "a resource twice",
      { service: "s", resources: [resource("t://a"), resource("t://a")] },
      /twice/,
    ],
    [
      "a title that is not a string",
      { service: "s", resources: [{ ...resource("t://a"), title: 5 as unknown as string }] },
      /title/,
    ],
  ];
  for (const [name, service, pattern] of cases) {
    await t.step(name, () => {
      const surface = mergeSurface([service]);
      assert.match(surface.problems.join("\n"), pattern);
    });
  }
});

Deno.test("decideSurface() takes what more than half the instances describe", () => {
  const one = { resources: [resource("t://a")] };
  const two = { resources: [resource("t://b")] };
  const previous = { resources: [resource("t://old")], resourceTemplates: [], prompts: [] };
  assert.deepEqual(
    decideSurface([{ answer: one }, { answer: one }, { answer: two }], previous)?.resources,
    one.resources,
  );
  assert.equal(decideSurface([{ answer: one }, { answer: two }], previous), previous);
  assert.equal(decideSurface([{ answer: one }, { answer: undefined }], undefined), undefined);
});
