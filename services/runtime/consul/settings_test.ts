import assert from "node:assert/strict";
import { loadConsulToken, parseConsulSettings } from "./settings.ts";

const DEFAULTS = { defaultAddress: "http://consul:8500" };

Deno.test("parseConsulSettings() reads CONSUL_HTTP_ADDR, _TOKEN and _TOKEN_FILE", () => {
  assert.deepEqual(parseConsulSettings({}, DEFAULTS), {
    settings: { address: "http://consul:8500", token: undefined, tokenFile: undefined },
    problems: [],
  });
  const { settings } = parseConsulSettings({
    CONSUL_HTTP_ADDR: "127.0.0.1:8500/",
    CONSUL_HTTP_TOKEN: "abc",
    CONSUL_HTTP_TOKEN_FILE: "/run/secrets/t",
  }, DEFAULTS);
  assert.deepEqual(settings, {
    address: "http://127.0.0.1:8500",
    token: "abc",
    tokenFile: "/run/secrets/t",
  });
  assert.equal(
    parseConsulSettings({ CONSUL_HTTP_TOKEN: "a b" }, DEFAULTS).problems.length,
    1,
  );
  assert.equal(parseConsulSettings({ CONSUL_HTTP_ADDR: "ftp://x" }, DEFAULTS).problems.length, 1);
});

Deno.test("loadConsulToken() prefers the inline token, then reads the file", async () => {
  const read = (text: string) => () => Promise.resolve(text);
  const base = { address: "http://consul:8500", token: undefined, tokenFile: "/t" };
  assert.equal(await loadConsulToken({ ...base, token: "inline" }, read("file")), "inline");
  assert.equal(await loadConsulToken(base, read(" from-file\n")), "from-file");
  assert.equal(await loadConsulToken({ ...base, tokenFile: undefined }, read("x")), undefined);
  await assert.rejects(() => loadConsulToken(base, read("\n")), /holds no usable token/);
  await assert.rejects(
    () => loadConsulToken(base, () => Promise.reject(new Error("no such file"))),
    /Cannot read CONSUL_HTTP_TOKEN_FILE "\/t": no such file/,
  );
});
