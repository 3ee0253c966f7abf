import assert from "node:assert/strict";
import { buildLbModel } from "./model.ts";
import { escapeHaproxyWord, quoteHaproxy, renderHaproxyConfig } from "./config.ts";
import { loadHaproxyTemplates } from "./templates.ts";
import { GOLDEN_CASES, GOLDEN_SETTINGS } from "./testdata/fixtures.ts";

const TEMPLATE = new URL("../templates/haproxy.cfg.hbs", import.meta.url).pathname;
const GOLDEN_DIR = new URL("./testdata/", import.meta.url).pathname;

Deno.test("renderHaproxyConfig() matches the golden config of every Consul state", async (t) => {
  const templates = await loadHaproxyTemplates(TEMPLATE);
  for (const [name, { snapshot, settings }] of Object.entries(GOLDEN_CASES)) {
    await t.step(name, async () => {
      const rendered = renderHaproxyConfig(buildLbModel(snapshot, settings), templates);
      const path = `${GOLDEN_DIR}${name}.cfg`;
      // Regenerate with UPDATE_GOLDEN=1 after a deliberate template change, then review the diff.
      if (Deno.env.get("UPDATE_GOLDEN") === "1") await Deno.writeTextFile(path, rendered);
      assert.equal(rendered, await Deno.readTextFile(path));
    });
  }
});

Deno.test("renderHaproxyConfig() reports a template error with its reason", () => {
  const model = buildLbModel({ routers: [], services: {} }, GOLDEN_SETTINGS);
  assert.throws(
    () => renderHaproxyConfig(model, { main: "global\n  {{#each}}", partials: {} }),
    { name: "TemplateError", message: /Cannot render the HAProxy template/ },
  );
  assert.throws(
    () => renderHaproxyConfig(model, { main: "{{settings.noSuchField}}", partials: {} }),
    { name: "TemplateError", message: /noSuchField/ },
  );
});

Deno.test("renderHaproxyConfig() refuses an address that would break a config line", () => {
  const model = buildLbModel({ routers: [], services: {} }, GOLDEN_SETTINGS);
  const bad = {
    ...model,
    mcp: {
      ...model.mcp,
      slots: [{
        name: "r1",
        state: "ready" as const,
        instance: {
          id: "x",
          address: "1.2.3.4 backup",
          port: 1,
          weight: 1,
          health: "passing" as const,
        },
      }],
    },
  };
  assert.throws(
    () => renderHaproxyConfig(bad, { main: "{{#each mcp.slots}}{{name}}{{/each}}", partials: {} }),
    {
      name: "TemplateError",
      message: /1\.2\.3\.4 backup/,
    },
  );
});

Deno.test("quoteHaproxy() escapes quotes, backslashes and variables", () => {
  assert.equal(quoteHaproxy(`a"b\\c$HOME'`), `"a\\"b\\\\c\\$HOME\\'"`);
  assert.throws(() => quoteHaproxy("a\nb"), TypeError);
});

Deno.test("renderHaproxyConfig() escapes every printed value for HAProxy's config syntax", async (t) => {
  await t.step("escapeHaproxyWord() escapes spaces, comments, quotes, backslashes and $", () => {
    assert.equal(escapeHaproxyWord(`a b#c"d'e\\f$g`), `a\\ b\\#c\\"d\\'e\\\\f\\$g`);
    assert.equal(escapeHaproxyWord("127.0.0.1"), "127.0.0.1");
    assert.throws(() => escapeHaproxyWord("a\nb"), { name: "TemplateError" });
    assert.throws(() => escapeHaproxyWord("a\rb"), { name: "TemplateError" });
  });
  await t.step("a value that would end a line or start a comment cannot", () => {
    const model = buildLbModel({ routers: [], services: {} }, {
      ...GOLDEN_SETTINGS,
      hardStopAfter: "5m # \nlisten evil",
    });
    assert.throws(
      () =>
        renderHaproxyConfig(model, {
          main: "hard-stop-after {{settings.hardStopAfter}}",
          partials: {},
        }),
      { name: "TemplateError", message: /control character/ },
    );
    const spaced = buildLbModel({ routers: [], services: {} }, {
      ...GOLDEN_SETTINGS,
      hardStopAfter: "5m # comment",
    });
    assert.equal(
      renderHaproxyConfig(spaced, { main: "x {{settings.hardStopAfter}}", partials: {} }),
      "x 5m\\ \\#\\ comment",
    );
  });
  await t.step("the quote helper still gets the raw value", () => {
    const model = buildLbModel({ routers: [], services: {} }, {
      ...GOLDEN_SETTINGS,
      statsAuth: { user: "a b", password: "p$" },
    });
    assert.equal(
      renderHaproxyConfig(model, { main: "{{quote settings.statsAuth.user}}", partials: {} }),
      '"a b"',
    );
  });
});
