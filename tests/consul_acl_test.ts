/**
 * Consul ACLs against a real dev agent with `default_policy = "deny"`: the platform's policies and
 * tokens are made once and found again, anonymous requests get nothing, a service token registers
 * its own name only, and every program (service, router, `lb render`) works with its token.
 */
import assert from "node:assert/strict";
import {
  bootstrapConsulAcls,
  ensureConsulAcls,
  ensurePlatformAcls,
} from "../ops/adapters/consul_acl.ts";
import { ConsulHttp, MANAGEMENT_TOKEN_PATH } from "../ops/adapters/consul.ts";
import { planAcls, platformAclInput } from "../ops/plan/consul_acl.ts";
import { ALL_SERVICES } from "../ops/plan/services.ts";
import { nodeLocalConsulUrl } from "../services/runtime/local_agent.ts";
import { createLogger } from "../services/runtime/logger.ts";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { spawnDeno, spawnLbSync, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { connectV1, startRouter } from "./router_harness.ts";

async function status(
  url: string,
  init: RequestInit & { token?: string } = {},
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = init.token ? { "X-Consul-Token": init.token } : {};
  const response = await fetch(url, { ...init, headers });
  return { status: response.status, text: await response.text() };
}

function registration(name: string, id: string, port = 1): string {
  return JSON.stringify({ Name: name, ID: id, Address: "127.0.0.1", Port: port });
}

Deno.test("bootstrapConsulAcls() makes a management token once", async () => {
  const consul = await startConsulDev({ acl: "unbootstrapped" });
  try {
    // The leader may take a moment to accept bootstrapping after it is elected.
    const token = await eventually(
      "ACL bootstrap",
      () => bootstrapConsulAcls(consul.url).catch(() => undefined),
      (secret) => secret !== undefined,
    );
    assert.match(token!, /^[0-9a-f-]{36}$/);
    assert.equal(await bootstrapConsulAcls(consul.url), undefined);
    const outcome = await ensurePlatformAcls(consul.url, token!, { stack: "agent-platform" });
    assert.ok(outcome.tokens["agent-echo"]);
  } finally {
    await consul.stop();
  }
});

Deno.test("Consul ACLs: tokens made once, anonymous refused, services bound to their name", async (t) => {
  const consul = await startConsulDev({ acl: true });
  const management = consul.managementToken!;
  try {
    const plan = planAcls(platformAclInput("agent-platform", { services: ALL_SERVICES }));
    const first = await ensureConsulAcls(consul.url, management, { plan });
    await t.step("a second run changes nothing and gives the same tokens", async () => {
      assert.ok(first.changes.length >= plan.policies.length + plan.tokens.length);
      const second = await ensurePlatformAcls(consul.url, management, { stack: "agent-platform" });
      assert.deepEqual(second.changes, []);
      assert.deepEqual(second.tokens, first.tokens);
    });
    const tokens = first.tokens;
    const managed = await status(`${consul.url}/v1/agent/service/register`, {
      method: "PUT",
      token: management,
      body: registration("agent-echo", "echo-seen"),
    });
    assert.equal(managed.status, 200, managed.text);

    await t.step("anonymous: no registration, no KV write, no catalog read", async () => {
      const register = await status(`${consul.url}/v1/agent/service/register`, {
        method: "PUT",
        body: registration("mcp-router", "rogue-router"),
      });
      assert.equal(register.status, 403, register.text);
      const kv = await status(`${consul.url}/v1/kv/platform/lb-strategy/agent-echo`, {
        method: "PUT",
        body: "random",
      });
      assert.equal(kv.status, 403, kv.text);
      const catalog = await status(`${consul.url}/v1/catalog/services`);
      assert.deepEqual(JSON.parse(catalog.text), {});
      const health = await status(`${consul.url}/v1/health/service/agent-echo`);
      assert.deepEqual(JSON.parse(health.text), []);
      const read = await status(`${consul.url}/v1/kv/platform/mcp-router/x`);
      assert.equal(read.status, 403);
    });

    await t.step("a service token registers its own name and no other", async () => {
      const other = await status(`${consul.url}/v1/agent/service/register`, {
        method: "PUT",
        token: tokens["agent-echo"],
        body: registration("mcp-router", "echo-as-router"),
      });
      assert.equal(other.status, 403, other.text);
      const own = await status(`${consul.url}/v1/agent/service/register`, {
        method: "PUT",
        token: tokens["agent-echo"],
        body: registration("agent-echo", "echo-own"),
      });
      assert.equal(own.status, 200, own.text);
      const kv = await status(`${consul.url}/v1/kv/platform/lb-strategy/agent-echo`, {
        method: "PUT",
        token: tokens["agent-echo"],
        body: "random",
      });
      assert.equal(kv.status, 403);
    });

    await t.step("the routers write their own KV prefix only; lb writes nothing", async () => {
      const own = await status(`${consul.url}/v1/kv/platform/mcp-router/ended-sessions/1-x`, {
        method: "PUT",
        token: tokens["mcp-router"],
        body: "1",
      });
      assert.equal(own.status, 200, own.text);
      // Ended sessions are written as transactions (a segment renamed as it grows).
      const prefix = "platform/mcp-router/ended-sessions/3600/r.1/0";
      const transaction = await status(`${consul.url}/v1/txn`, {
        method: "PUT",
        token: tokens["mcp-router"],
        body: JSON.stringify([
          { KV: { Verb: "set", Key: `${prefix}-2`, Value: btoa("a\nb") } },
          { KV: { Verb: "delete", Key: `${prefix}-1` } },
        ]),
      });
      assert.equal(transaction.status, 200, transaction.text);
      const strategy = await status(`${consul.url}/v1/kv/platform/lb-strategy/agent-echo`, {
        method: "PUT",
        token: tokens["mcp-router"],
        body: "random",
      });
      assert.equal(strategy.status, 403);
      const lbWrite = await status(`${consul.url}/v1/kv/platform/mcp-router/x`, {
        method: "PUT",
        token: tokens.lb,
        body: "1",
      });
      assert.equal(lbWrite.status, 403);
      const lbRegister = await status(`${consul.url}/v1/agent/service/register`, {
        method: "PUT",
        token: tokens.lb,
        body: registration("mcp-router", "lb-as-router"),
      });
      assert.equal(lbRegister.status, 403);
      const lbRead = await status(`${consul.url}/v1/catalog/services`, { token: tokens.lb });
      assert.ok("agent-echo" in JSON.parse(lbRead.text));
    });

    await t.step("the node-local agent is found with a service's token", async () => {
      const self = await status(`${consul.url}/v1/agent/self`, { token: management });
      const node: string = JSON.parse(self.text).Config.NodeName;
      const logger = createLogger({ level: "error" });
      const found = await nodeLocalConsulUrl(consul.url, node, {
        logger,
        token: tokens["agent-echo"],
      });
      assert.equal(found, consul.url);
    });

    await t.step("a service, a router and lb render work with their tokens", async () => {
      await status(`${consul.url}/v1/agent/service/deregister/echo-seen`, {
        method: "PUT",
        token: management,
      });
      await status(`${consul.url}/v1/agent/service/deregister/echo-own`, {
        method: "PUT",
        token: management,
      });
      const tokenFile = await Deno.makeTempFile();
      await Deno.writeTextFile(tokenFile, `${tokens["agent-echo"]}\n`);
      const echo = startService("echo-agent", {
        consulUrl: consul.url,
        id: "echo-acl",
        env: { CONSUL_HTTP_TOKEN_FILE: tokenFile },
      });
      const router = await startRouter(consul.url, "router-acl", {
        CONSUL_HTTP_TOKEN: tokens["mcp-router"],
      });
      try {
        await eventually("echo passing in Consul", async () => {
          const health = await status(`${consul.url}/v1/health/service/agent-echo?passing`, {
            token: management,
          });
          return JSON.parse(health.text).length;
        }, (count) => count === 1);
        const { client } = await connectV1(router.url);
        try {
          const tools = await eventually(
            "the router's catalog",
            async () => (await client.listTools()).tools.map((tool: { name: string }) => tool.name),
            (names) => names.includes("echo"),
          );
          assert.ok(tools.includes("echo"));
        } finally {
          await client.close();
        }
        // The router registered itself with its own token, and its check passes.
        await eventually("the router passing in Consul", async () => {
          const routerHealth = await status(`${consul.url}/v1/health/service/mcp-router?passing`, {
            token: management,
          });
          return JSON.parse(routerHealth.text).length;
        }, (count) => count === 1);
        const render = spawnDeno(["ops/main.ts", "lb", "render", "--consul", consul.url], {
          env: { CONSUL_HTTP_TOKEN: tokens.lb },
        });
        const rendered = await render.exited;
        assert.equal(rendered.code, 0, render.output());
        assert.match(render.output(), new RegExp(`127\\.0\\.0\\.1:${router.port}`));
        const anonymous = spawnDeno(["ops/main.ts", "lb", "render", "--consul", consul.url], {
          env: { CONSUL_HTTP_TOKEN: "" },
        });
        await anonymous.exited;
        assert.doesNotMatch(anonymous.output(), new RegExp(`127\\.0\\.0\\.1:${router.port}`));

        // lb sync with its token file: HAProxy forwards to the router it read from Consul.
        const lbTokenFile = await Deno.makeTempFile();
        const runDir = await Deno.makeTempDir();
        await Deno.writeTextFile(lbTokenFile, tokens.lb);
        const lbSync = spawnLbSync(consul.url, runDir, { CONSUL_HTTP_TOKEN_FILE: lbTokenFile });
        const mcpPort = lbSync.mcpPort;
        try {
          await eventually("the router through lb sync's HAProxy", async () => {
            // The router's own answer to a GET without a session (HAProxy alone would say 503).
            const response = await fetch(`http://127.0.0.1:${mcpPort}/mcp`);
            return `${response.status} ${await response.text()}`;
          }, (answer) => answer.startsWith("400") && answer.includes("Mcp-Session-Id"));
        } finally {
          const stopped = await lbSync.stop("SIGTERM");
          await Deno.remove(lbTokenFile);
          await Deno.remove(runDir, { recursive: true });
          assert.equal(stopped.code, 0, lbSync.output());
        }

        // The ops tool: the management token from the project's secrets file.
        const root = await Deno.makeTempDir();
        try {
          const anonymousOps = new ConsulHttp(consul.url, { env: {}, root });
          assert.deepEqual(await anonymousOps.instances(["mcp-router"]), []);
          await Deno.mkdir(`${root}/.platform/secrets`, { recursive: true });
          await Deno.writeTextFile(`${root}/${MANAGEMENT_TOKEN_PATH}`, `${management}\n`);
          const ops = new ConsulHttp(consul.url, { env: {}, root });
          const instances = await ops.instances(["mcp-router"]);
          assert.deepEqual(instances.map((instance) => instance.id), ["router-acl"]);
        } finally {
          await Deno.remove(root, { recursive: true });
        }
      } finally {
        await router.stop();
        await echo.stop();
        await Deno.remove(tokenFile);
      }
      assert.match(echo.output(), /registered in Consul/);
      // A refusal reads `answered 403 to …: Permission denied` (a bare "403" may be in a port).
      assert.doesNotMatch(echo.output(), /answered 403|Permission denied|ACL not found/);
      assert.doesNotMatch(router.output(), /answered 403|HTTP 403|Permission denied|ACL not found/);
    });
  } finally {
    await consul.stop();
  }
});

Deno.test("lb render with a token Consul does not know fails with a clear error", async () => {
  const consul = await startConsulDev({ acl: true });
  try {
    const render = spawnDeno(["ops/main.ts", "lb", "render", "--consul", consul.url], {
      env: { CONSUL_HTTP_TOKEN: crypto.randomUUID() },
    });
    const status = await render.exited;
    assert.equal(status.code, 1);
    assert.match(render.output(), /error: .*answered 403 .*ACL not found/);
  } finally {
    await consul.stop();
  }
});

Deno.test("ensurePlatformAcls() with given secrets: each token carries its own, a stale one is replaced", async () => {
  const consul = await startConsulDev({ acl: true });
  const management = consul.managementToken!;
  try {
    // Tokens as an earlier deploy made them, with secrets Consul chose.
    const earlier = await ensurePlatformAcls(consul.url, management, { stack: "st" });
    const plan = planAcls(platformAclInput("st", { services: ALL_SERVICES }));
    const secrets = Object.fromEntries(
      plan.tokens.map((token) => [token.program, crypto.randomUUID()]),
    );
    const first = await ensurePlatformAcls(consul.url, management, { stack: "st", secrets });
    assert.deepEqual(first.tokens, secrets);
    assert.equal(
      first.changes.filter((change) => change.startsWith("replaced token")).length,
      plan.tokens.length,
    );
    const again = await ensurePlatformAcls(consul.url, management, { stack: "st", secrets });
    assert.deepEqual(again.changes, []);
    // The replaced secrets are gone; the given ones work, as their programs' tokens.
    const stale = await status(`${consul.url}/v1/acl/token/self`, { token: earlier.tokens.lb });
    assert.equal(stale.status, 403, stale.text);
    const own = await status(`${consul.url}/v1/agent/service/register`, {
      method: "PUT",
      token: secrets["agent-echo"],
      body: registration("agent-echo", "echo-given"),
    });
    assert.equal(own.status, 200, own.text);
    const other = await status(`${consul.url}/v1/agent/service/register`, {
      method: "PUT",
      token: secrets["agent-echo"],
      body: registration("mcp-router", "echo-given-as-router"),
    });
    assert.equal(other.status, 403, other.text);
    const probe = await status(`${consul.url}/v1/health/service/agent-echo`, {
      token: secrets.probe,
    });
    assert.deepEqual(
      JSON.parse(probe.text).map((entry: { Service: { ID: string } }) => entry.Service.ID),
      ["echo-given"],
    );
    const probeWrite = await status(`${consul.url}/v1/kv/platform/lb-strategy/agent-echo`, {
      method: "PUT",
      token: secrets.probe,
      body: "random",
    });
    assert.equal(probeWrite.status, 403);
  } finally {
    await consul.stop();
  }
});
