import { managerInfo } from "../../tests/helpers/swarm_fixtures.ts";
import assert from "node:assert/strict";
import { fakeContext } from "../../tests/helpers/fake_ops.ts";
import type { SwarmService } from "../plan/state.ts";
import { statusCommand } from "./status.ts";

function router(labels: Record<string, string>): SwarmService {
  return {
    id: "r",
    name: "mcp-router",
    fullName: "st_mcp-router",
    replicas: 1,
    global: false,
    labels,
    image: "agent-platform/mcp-router:x",
    tasks: [],
  };
}

/** `status` against a stack whose only service is the routers, Consul out of reach. */
async function status(labels: Record<string, string>, json: boolean) {
  const run = fakeContext({
    flags: { json },
    docker: {
      info: managerInfo,
      nodes: () => Promise.resolve([]),
      services: () => Promise.resolve([router(labels)]),
    },
    consul: { ready: () => Promise.resolve(false) },
  });
  await statusCommand(run.context);
  return run.stdout.join("");
}

Deno.test("status flags a stack deployed with --no-auth", async () => {
  const text = await status({ "platform.auth": "none" }, false);
  assert.match(
    text,
    /^! MCP endpoint: http:\/\/127\.0\.0\.1:8080\/mcp takes calls WITHOUT credentials \(deployed with --no-auth\)$/m,
  );
  const json = JSON.parse(await status({ "platform.auth": "none" }, true));
  assert.equal(json.auth.mcp, "none");
  assert.equal(json.auth.tokenFile, null);
});

Deno.test("status says where the client token and the stats credentials are", async () => {
  const text = await status({}, false);
  assert.match(text, /^MCP endpoint: .* token in ".*\/\.platform\/secrets\/st\/mcp-token"\)$/m);
  assert.match(
    text,
    /^HAProxy stats: .* \(user:password in ".*\/\.platform\/secrets\/st\/lb-stats-auth"\)$/m,
  );
  assert.doesNotMatch(text, /WITHOUT credentials/);
  const json = JSON.parse(await status({}, true));
  assert.equal(json.auth.mcp, "token");
  assert.match(json.auth.tokenFile, /\.platform\/secrets\/st\/mcp-token$/);
});
