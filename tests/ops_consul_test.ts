/**
 * The ops tool's Consul adapter against a real agent: removing registrations it holds itself and
 * ones another node's agent holds (the ghosts `deploy` and `prune` remove).
 */
import assert from "node:assert/strict";
import { ConsulHttp } from "../ops/adapters/consul.ts";
import { startConsulDev } from "./helpers/consul_dev.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const GHOST = `echo-agent-${"g".repeat(25)}`;
const LOCAL = `echo-agent-${"l".repeat(25)}`;

async function put(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, { method: "PUT", body: JSON.stringify(body) });
  await response.body?.cancel();
  assert.equal(response.status, 200, url);
}

Deno.test("ConsulHttp.deregister() removes an agent's own registration and another node's", async () => {
  const consul = await startConsulDev();
  try {
    await put(`${consul.url}/v1/agent/service/register`, {
      ID: LOCAL,
      Name: "agent-echo",
      Port: 1,
    });
    // A registration held under another node (an old stack's agent): this agent does not know it.
    await put(`${consul.url}/v1/catalog/register`, {
      Node: "old-node",
      Address: "10.0.0.9",
      Service: { ID: GHOST, Service: "agent-echo", Address: "10.0.0.9", Port: 1 },
    });
    const ops = new ConsulHttp(consul.url, { env: {}, root: ROOT });
    const before = await ops.instances(["agent-echo"]);
    assert.deepEqual(
      before.map((entry) => [entry.id, entry.node]).sort(),
      [
        [GHOST, "old-node"],
        [LOCAL, before.find((entry) => entry.id === LOCAL)!.node],
      ].sort(),
    );

    await ops.deregister(GHOST, { node: "old-node" });
    await ops.deregister(LOCAL);
    assert.deepEqual(await ops.instances(["agent-echo"]), []);
    // Both again: already gone is not a failure.
    await ops.deregister(GHOST, { node: "old-node" });
    await ops.deregister(LOCAL);
  } finally {
    await consul.stop();
  }
});
