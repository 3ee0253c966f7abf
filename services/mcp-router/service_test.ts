import assert from "node:assert/strict";
import { pathOf } from "./service.ts";

Deno.test("pathOf() takes the path of an absolute URL as URL.pathname does", () => {
  for (
    const url of [
      "http://127.0.0.1:8080/mcp",
      "http://host/mcp?x=1",
      "http://host/mcp#frag",
      "http://host",
      "http://host/",
      "http://host/a/b?c=/d",
    ]
  ) {
    assert.equal(pathOf(url), new URL(url).pathname, url);
  }
});
