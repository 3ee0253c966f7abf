import assert from "node:assert/strict";
import { startConsulDev } from "./consul_dev.ts";

Deno.test("startConsulDev() runs a real agent that can restart on the same port", async () => {
  const consul = await startConsulDev();
  try {
    const before = await (await fetch(`${consul.url}/v1/agent/self`)).json();
    assert.equal(before.Config.Version, "1.8.7");
    await consul.restart();
    const leader = await (await fetch(`${consul.url}/v1/status/leader`)).json();
    assert.match(leader, /127\.0\.0\.1/);
  } finally {
    await consul.stop();
  }
});
