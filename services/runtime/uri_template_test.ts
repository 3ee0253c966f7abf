import assert from "node:assert/strict";
import { compileUriTemplate } from "./uri_template.ts";

Deno.test("compileUriTemplate() matches level-1 variables and decodes them", async (t) => {
  const template = compileUriTemplate("test://template/{id}/data");
  const cases: [string, Record<string, string> | undefined][] = [
    ["test://template/123/data", { id: "123" }],
    ["test://template/a%20b/data", { id: "a b" }],
    ["test://template//data", undefined],
    ["test://template/1/2/data", undefined],
    ["test://template/123/data/more", undefined],
    ["test://template/%E0/data", undefined],
  ];
  for (const [uri, expected] of cases) {
    await t.step(uri, () => assert.deepEqual(template.match(uri), expected));
  }
  assert.deepEqual(template.variables, ["id"]);
});

Deno.test("compileUriTemplate() refuses what is not level 1", () => {
  assert.throws(() => compileUriTemplate("test://{+path}"), /level-1/);
  assert.throws(() => compileUriTemplate("test://{a}/{a}"), /twice/);
  assert.throws(() => compileUriTemplate("test://{a"), /level-1/);
});
