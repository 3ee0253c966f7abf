import assert from "node:assert/strict";
import type { ConsulInstance } from "./state.ts";
import { findInstance, parseWeightArg } from "./weight.ts";

function instance(id: string, service = "agent-echo"): ConsulInstance {
  return { id, service, address: "", port: 1, status: "passing" };
}

Deno.test("parseWeightArg() takes 1 to 256 or default, else a usage error", async (t) => {
  assert.equal(parseWeightArg("7"), 7);
  assert.equal(parseWeightArg("default"), "default");
  for (const bad of ["0", "257", "x", "", "1.5"]) {
    await t.step(JSON.stringify(bad), () => {
      assert.throws(() => parseWeightArg(bad), (error: Error & { exitCode?: number }) => {
        assert.equal(error.exitCode, 2);
        assert.match(error.message, /^Invalid weight ".*": expected an integer from 1 to 256/);
        return true;
      });
    });
  }
});

Deno.test("findInstance() takes a full ID or a unique end of one", () => {
  const instances = [
    instance("echo-agent-aaa1"),
    instance("echo-agent-bbb1"),
    instance("x-aaa1", "tool-weather"),
  ];
  assert.equal(findInstance(instances, "agent-echo", "echo-agent-bbb1").id, "echo-agent-bbb1");
  assert.equal(findInstance(instances, "agent-echo", "aaa1").id, "echo-agent-aaa1");
  assert.throws(() => findInstance(instances, "agent-echo", "1"), /names several instances/);
  assert.throws(
    () => findInstance(instances, "agent-echo", "zzz"),
    /No instance "zzz" of "agent-echo" in Consul; its instances: echo-agent-aaa1, echo-agent-bbb1/,
  );
});
