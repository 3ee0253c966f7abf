/**
 * The Consul image's entrypoint (consul/entrypoint.sh) with a real Consul 1.8 agent, started as the
 * stack starts a server: the secrets come from files, the agent runs with ACLs on (deny by
 * default) and encrypted gossip, its healthcheck works before any leader, and no secret is on
 * its command line.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { deriveConsulSecrets } from "../ops/plan/consul_secrets.ts";
import { renderStack } from "../ops/render/stack.ts";
import { freePort } from "./helpers/consul_dev.ts";
import { eventually } from "./helpers/poll.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const ENTRY = `${ROOT}consul/entrypoint.sh`;

/** The `-hcl=acl …` flag of the stack's Consul servers, so this test runs what the stack runs. */
async function stackAclFlag(): Promise<string> {
  const template = await Deno.readTextFile(`${ROOT}stack.yml`);
  // deno-lint-ignore no-explicit-any
  const stack = parse(renderStack(template, { vars: {}, images: {} })) as any;
  const flag = (stack.services.consul.command as string[]).find((word) =>
    word.startsWith("-hcl=acl")
  );
  assert.ok(flag, "stack.yml gives the servers an ACL flag");
  return flag;
}

async function run(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(args[0], {
    args: args.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    text: new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr),
  };
}

Deno.test("consul/entrypoint.sh: ACLs on, deny by default, encrypted gossip, secrets off the command line", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "consul-entry-" });
  const secretsDir = `${dir}/secrets`;
  await Deno.mkdir(secretsDir);
  const management = crypto.randomUUID();
  const derived = await deriveConsulSecrets(management, ["agent"]);
  const files: Record<string, string> = {
    "consul-gossip-key": derived.gossipKey,
    "consul-agent-token": derived.tokens.agent,
    "consul-agent-recovery-token": derived.agentRecoveryToken,
    "consul-management-token": management,
  };
  for (const [name, value] of Object.entries(files)) {
    await Deno.writeTextFile(`${secretsDir}/${name}`, `${value}\n`);
  }
  const http = freePort();
  const url = `http://127.0.0.1:${http}`;
  const config = `${dir}/secret-config.json`;
  // No stop delay: the test stops the agent at once.
  const env = {
    CONSUL_SECRETS_DIR: secretsDir,
    CONSUL_SECRET_CONFIG: config,
    CONSUL_STOP_DELAY: "0",
  };
  const child = new Deno.Command("bash", {
    args: [
      ENTRY,
      "agent",
      "-server",
      "-bootstrap-expect=1",
      `-data-dir=${dir}/data`,
      "-bind=127.0.0.1",
      "-client=127.0.0.1",
      `-http-port=${http}`,
      "-dns-port=-1",
      `-serf-lan-port=${freePort()}`,
      `-serf-wan-port=${freePort()}`,
      `-server-port=${freePort()}`,
      "-grpc-port=-1",
      "-log-level=warn",
      await stackAclFlag(),
    ],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const get = async (path: string, init: RequestInit & { token?: string } = {}) => {
    const headers: Record<string, string> = init.token ? { "X-Consul-Token": init.token } : {};
    const response = await fetch(`${url}${path}`, { ...init, headers });
    return { status: response.status, text: await response.text() };
  };
  try {
    await t.step(
      "the healthcheck's recovery token works as soon as the agent answers",
      async () => {
        const recovery = `${secretsDir}/consul-agent-recovery-token`;
        const info = await eventually(
          "consul info with the recovery token",
          () => run(["consul", "info", `-http-addr=${url}`, `-token-file=${recovery}`]),
          (result) => result.code === 0,
        );
        assert.match(info.text, /encrypted = true/);
        const anonymous = await run(["consul", "info", `-http-addr=${url}`]);
        assert.notEqual(anonymous.code, 0, anonymous.text);
      },
    );

    await t.step("the management token is Consul's once a leader is elected", async () => {
      const self = await eventually(
        "the management token",
        () => get("/v1/acl/token/self", { token: management }),
        (answer) => answer.status === 200,
      );
      assert.match(self.text, /global-management/);
    });

    await t.step("anonymous requests read nothing and write nothing", async () => {
      const register = await get("/v1/agent/service/register", {
        method: "PUT",
        body: JSON.stringify({ Name: "mcp-router", ID: "rogue", Address: "127.0.0.1", Port: 1 }),
      });
      assert.equal(register.status, 403, register.text);
      assert.equal((await get("/v1/kv/platform/x", { method: "PUT", body: "1" })).status, 403);
      assert.equal((await get("/v1/kv/platform/x")).status, 403);
      assert.equal((await get("/v1/agent/self")).status, 403);
      assert.deepEqual(JSON.parse((await get("/v1/catalog/services")).text), {});
    });

    await t.step("the secrets are in a root-only file, not on the command line", async () => {
      assert.equal((await Deno.stat(config)).mode! & 0o777, 0o600);
      // The entrypoint (bash) runs the agent as its child. `ps` shows what /proc holds (command
      // line, and with `e` the environment), within the test permissions.
      const children = await run(["ps", "-o", "pid=", "--ppid", String(child.pid)]);
      const agent = children.text.trim().split(/\s+/)[0];
      assert.match(agent, /^\d+$/, "the agent runs under the entrypoint");
      const agentArgs = (await run(["ps", "-ww", "-o", "args=", "-p", agent])).text;
      assert.match(agentArgs, /^consul agent /);
      assert.match(agentArgs, /-config-file=/);
      for (const pid of [String(child.pid), agent]) {
        const shown = (await run(["ps", "eww", "-o", "args=", "-p", pid])).text;
        assert.ok(shown.length > 0);
        for (const value of Object.values(files)) assert.ok(!shown.includes(value), pid);
      }
    });
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("consul/entrypoint.sh refuses a secret that is not a token, with exit code 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "consul-entry-" });
  try {
    await Deno.writeTextFile(`${dir}/consul-agent-token`, 'x", "acl": {"enabled": false}, "y": "');
    const result = await run(["bash", ENTRY, "agent", "-dev"], {
      CONSUL_SECRETS_DIR: dir,
      CONSUL_SECRET_CONFIG: `${dir}/config.json`,
    });
    assert.equal(result.code, 2, result.text);
    assert.match(result.text, /error: the secret "consul-agent-token" does not hold a valid value/);
    await assert.rejects(() => Deno.stat(`${dir}/config.json`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("consul/entrypoint.sh refuses a data folder another user owns, saying how to hand it over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "consul-entry-" });
  try {
    const data = `${dir}/data`;
    await Deno.mkdir(data);
    await Deno.writeTextFile(`${data}/node-id`, "x");
    // Another user's files: what an agent that ran as root leaves for one that runs as uid 10001.
    const other = Deno.uid() === 0 ? 12345 : 0;
    const handedOver = await Deno.chown(`${data}/node-id`, other, other).then(
      () => true,
      () => false,
    );
    assert.ok(handedOver, "the test can give a file to another user (it runs as root, as CI does)");
    const result = await run(["bash", ENTRY, "agent", "-dev", `-data-dir=${data}`], {
      CONSUL_SECRETS_DIR: `${dir}/none`,
      CONSUL_SECRET_CONFIG: `${dir}/config.json`,
    });
    assert.equal(result.code, 1, result.text);
    assert.match(result.text, new RegExp(`error: the data folder "${data}" is not owned by uid`));
    assert.match(result.text, /--entrypoint chown <this image> -R/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
