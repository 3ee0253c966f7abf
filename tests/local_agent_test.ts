/** The node-local Consul agent is found through the catalog of a real Consul agent. */
import assert from "node:assert/strict";
import { agentAddress, isNodeName, nodeLocalConsulUrl } from "../services/runtime/local_agent.ts";
import { createLogger } from "../services/runtime/logger.ts";
import { startConsulDev } from "./helpers/consul_dev.ts";

const logger = createLogger({ level: "error" });

Deno.test("agentAddress() takes only an IPv4 literal from a catalog answer", () => {
  assert.equal(agentAddress({ Node: { Address: "10.0.1.7" } }), "10.0.1.7");
  assert.equal(agentAddress(null), undefined);
  assert.equal(agentAddress({ Node: { Address: "127.0.0.2;shutdown frontend mcp;" } }), undefined);
  assert.equal(agentAddress({ Node: { Address: "evil.example" } }), undefined);
  assert.equal(agentAddress({ Node: { Address: 7 } }), undefined);
  assert.equal(agentAddress({ Node: { Address: "300.1.1.1" } }), undefined);
});

Deno.test("isNodeName() refuses what would change a Consul URL", () => {
  assert.ok(isNodeName("platform-2"));
  assert.ok(isNodeName("debian.local"));
  for (const bad of ["", "../agent/self", "a/b", "a?b", "a b", "-x", "a\nb"]) {
    assert.equal(isNodeName(bad), false, bad);
  }
});

Deno.test("nodeLocalConsulUrl() finds the agent of its node in a real Consul", async (t) => {
  const consul = await startConsulDev();
  try {
    const self = await (await fetch(`${consul.url}/v1/agent/self`)).json();
    const node: string = self.Config.NodeName;

    await t.step("without CONSUL_NODE the address is used as given", async () => {
      assert.equal(await nodeLocalConsulUrl(consul.url, undefined, { logger }), consul.url);
    });

    await t.step("the node's agent address, with the same port", async () => {
      const url = await nodeLocalConsulUrl(consul.url.replace("127.0.0.1", "localhost"), node, {
        logger,
      });
      assert.equal(url, consul.url);
    });

    await t.step("a malformed node name is refused before any request", async () => {
      await assert.rejects(
        nodeLocalConsulUrl(consul.url, "../agent/self", { logger }),
        /CONSUL_NODE must be a node name/,
      );
    });

    await t.step("an unknown node is waited for until the caller gives up", async () => {
      const gaveUp = new AbortController();
      const search = nodeLocalConsulUrl(consul.url, "no-such-node", {
        logger,
        signal: gaveUp.signal,
      });
      const outcome = await Promise.race([
        search.then(() => "found", () => "rejected"),
        new Promise((resolve) => setTimeout(() => resolve("still waiting"), 600)),
      ]);
      assert.equal(outcome, "still waiting");
      gaveUp.abort(new Error("stopping"));
      await assert.rejects(search, /stopping/);
    });
  } finally {
    await consul.stop();
  }
});
