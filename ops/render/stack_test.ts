import assert from "node:assert/strict";
import { parse } from "yaml";
import { consulSecretNames, STACK_SERVICE_TOKENS } from "../plan/consul_secrets.ts";
import { AUTH_LABEL, interpolate, renderStack, stackServiceNames } from "./stack.ts";

const STACK_FILE = new URL("../../stack.yml", import.meta.url);

Deno.test("interpolate() substitutes variables and defaults like docker stack deploy", async (t) => {
  const cases: [string, Record<string, string>, string][] = [
    ["${A}", { A: "1" }, "1"],
    ["${A:-2}", {}, "2"],
    ["${A-2}", {}, "2"],
    ["${A:-2}", { A: "3" }, "3"],
    ["$$A", {}, "$A"],
    ["{{.Task.ID}}", {}, "{{.Task.ID}}"],
  ];
  for (const [text, vars, expected] of cases) {
    await t.step(`${text} with ${JSON.stringify(vars)}`, () => {
      assert.equal(interpolate(text, vars), expected);
    });
  }
});

Deno.test("interpolate() names every unset variable without a default", () => {
  assert.throws(() => interpolate("${B} ${A}", {}), /unset variables: A, B/);
});

Deno.test("renderStack() sets images and replicas, and keeps the stack's safety settings", async () => {
  const template = await Deno.readTextFile(STACK_FILE);
  const rendered = renderStack(template, {
    vars: { CONSUL_PUBLISHED_PORT: "18500" },
    images: { "echo-agent": "agent-platform/echo-agent:abc", consul: "agent-platform/consul:def" },
    replicas: { "echo-agent": 3 },
  });
  // deno-lint-ignore no-explicit-any
  const stack = parse(rendered) as any;
  const echo = stack.services["echo-agent"];
  assert.equal(echo.image, "agent-platform/echo-agent:abc");
  assert.equal(echo.deploy.replicas, 3);
  assert.equal(echo.deploy.endpoint_mode, "dnsrr");
  assert.equal(echo.deploy.update_config.order, "start-first");
  assert.equal(echo.deploy.update_config.failure_action, "rollback");
  assert.equal(echo.environment.SERVICE_ID, "echo-agent-{{.Task.ID}}");
  assert.equal(echo.environment.CONSUL_HTTP_ADDR, "http://consul:8500");
  assert.deepEqual(echo.networks, ["platform"]);
  assert.ok(echo.healthcheck.test.includes("/app/services/runtime/health_check.sh"));
  assert.equal(stack.services["weather-tool"].deploy.replicas, 1);
  assert.equal(stack.services.consul.ports[0].published, 18500);
  assert.equal(stack.services.consul.ports[0].mode, "host");
  assert.equal(stack.networks.platform.attachable, true);
  assert.equal(Object.keys(stack).some((key) => key.startsWith("x-")), false);
});

Deno.test("stack.yml: every platform service stops later than it drains and finishes calls", async () => {
  const template = await Deno.readTextFile(STACK_FILE);
  // deno-lint-ignore no-explicit-any
  const stack = parse(renderStack(template, { vars: {}, images: {} })) as any;
  for (const name of ["echo-agent", "weather-tool", "itinerary-worker", "mcp-router"]) {
    const service = stack.services[name];
    const seconds = (text: string) => Number(text.replace(/s$/, ""));
    const needed = seconds(service.environment.DRAIN_SECONDS) +
      seconds(service.environment.GRACE_SECONDS);
    assert.ok(seconds(service.stop_grace_period) > needed, `${name} stop_grace_period`);
    assert.ok(service.deploy.resources.limits.memory, `${name} memory limit`);
  }
});

Deno.test("stackServiceNames() lists the stack's services", async () => {
  const template = await Deno.readTextFile(STACK_FILE);
  assert.deepEqual(stackServiceNames(template), [
    "consul",
    "consul-agent",
    "echo-agent",
    "conformance-server",
    "weather-tool",
    "itinerary-worker",
    "mcp-router",
    "lb",
    "prometheus",
    "autoscaler",
  ]);
});

Deno.test("renderStack() leaves out the optional services not asked for", async () => {
  const template = await Deno.readTextFile(STACK_FILE);
  const vars = { ROUTER_SESSION_KEY_SECRET: "st_router-session-key" };
  const without = parse(renderStack(template, { vars, images: {}, omit: ["conformance-server"] }));
  assert.equal(without.services["conformance-server"], undefined);
  assert.ok(without.services["echo-agent"]);
  const withIt = parse(renderStack(template, { vars, images: {} }));
  assert.equal(withIt.services["conformance-server"].environment.PORT, "50055");
  assert.deepEqual(withIt.services["conformance-server"].command, [
    "services/conformance-server/main.ts",
  ]);
});

Deno.test("renderStack() gives the routers their session key and the lb host-mode ports", async () => {
  const template = await Deno.readTextFile(STACK_FILE);
  const rendered = renderStack(template, {
    vars: {
      LB_PUBLISHED_PORT: "18080",
      LB_STATS_PUBLISHED_PORT: "18404",
      ROUTER_SESSION_KEY_SECRET: "st_router-session-key",
    },
    images: {},
  });
  // deno-lint-ignore no-explicit-any
  const stack = parse(rendered) as any;
  const router = stack.services["mcp-router"];
  assert.equal(router.environment.ROUTER_SESSION_KEY_FILE, "/run/secrets/router-session-key");
  assert.deepEqual(router.secrets, [
    {
      source: "router-session-key",
      target: "router-session-key",
      uid: "10001",
      gid: "10001",
      mode: 256,
    },
    {
      source: "consul-token-mcp-router",
      target: "consul-token",
      uid: "10001",
      gid: "10001",
      mode: 256,
    },
    { source: "mcp-tokens", target: "mcp-tokens", uid: "10001", gid: "10001", mode: 256 },
  ]);
  // Authenticated by default: the routers read their bearer tokens from the secret.
  assert.equal(router.environment.ROUTER_AUTH_TOKENS_FILE, "/run/secrets/mcp-tokens");
  assert.equal(router.environment.ROUTER_AUTH, undefined);
  assert.equal(stack.secrets["mcp-tokens"].external, true);
  assert.deepEqual(stack.secrets["router-session-key"], {
    external: true,
    name: "st_router-session-key",
  });
  assert.ok(router.healthcheck.test.includes("/readyz"));
  assert.equal(router.deploy.update_config.order, "start-first");
  const lb = stack.services.lb;
  assert.deepEqual(lb.ports.map((port: { published: number; mode: string }) => port), [
    { target: 8080, published: 18080, protocol: "tcp", mode: "host" },
    { target: 8404, published: 18404, protocol: "tcp", mode: "host" },
  ]);
  assert.equal(lb.deploy.update_config.order, "stop-first");
  assert.equal(lb.environment.LB_STATS_AUTH_FILE, undefined);
  assert.deepEqual(lb.secrets, [{
    source: "consul-token-lb",
    target: "consul-token",
    uid: "10001",
    gid: "10001",
    mode: 256,
  }]);
});

Deno.test("renderStack() mounts the stats credentials into the lb when given", async () => {
  const template = await Deno.readTextFile(STACK_FILE);
  const rendered = renderStack(template, {
    vars: {},
    images: {},
    statsAuthSecret: "st_lb-stats-auth-abc",
  });
  // deno-lint-ignore no-explicit-any
  const stack = parse(rendered) as any;
  assert.equal(stack.services.lb.environment.LB_STATS_AUTH_FILE, "/run/secrets/lb-stats-auth");
  assert.deepEqual(stack.services.lb.secrets, [
    { source: "consul-token-lb", target: "consul-token", uid: "10001", gid: "10001", mode: 256 },
    { source: "lb-stats-auth", target: "lb-stats-auth", uid: "10001", gid: "10001", mode: 256 },
  ]);
  assert.deepEqual(stack.secrets["lb-stats-auth"], {
    external: true,
    name: "st_lb-stats-auth-abc",
  });
  assert.deepEqual(stack.secrets["router-session-key"].external, true);
});

Deno.test("renderStack() names the tokens secret, and drops it only with noAuth", async () => {
  const template = await Deno.readTextFile(STACK_FILE);
  const rendered = renderStack(template, {
    vars: { MCP_TOKENS_SECRET: "st_mcp-tokens-abc" },
    images: {},
  });
  // deno-lint-ignore no-explicit-any
  const authenticated = parse(rendered) as any;
  assert.deepEqual(authenticated.secrets["mcp-tokens"], {
    external: true,
    name: "st_mcp-tokens-abc",
  });
  assert.equal(authenticated.services["mcp-router"].deploy.labels?.[AUTH_LABEL], undefined);

  // deno-lint-ignore no-explicit-any
  const open = parse(renderStack(template, { vars: {}, images: {}, noAuth: true })) as any;
  const router = open.services["mcp-router"];
  assert.equal(router.environment.ROUTER_AUTH, "none");
  assert.equal(router.environment.ROUTER_AUTH_TOKENS_FILE, undefined);
  assert.ok(
    // deno-lint-ignore no-explicit-any
    !router.secrets.some((entry: any) => entry.source === "mcp-tokens"),
  );
  assert.equal(open.secrets["mcp-tokens"], undefined);
  assert.equal(router.deploy.labels[AUTH_LABEL], "none");
});

Deno.test("renderStack(): every program mounts its own Consul token; no secret on a command line or in the environment", async (t) => {
  const template = await Deno.readTextFile(STACK_FILE);
  // deno-lint-ignore no-explicit-any
  const stack = parse(renderStack(template, { vars: { SECRET_PREFIX: "st" }, images: {} })) as any;
  const names = consulSecretNames("st");

  await t.step("each stack secret is the external secret deploy makes", () => {
    const declared = Object.fromEntries(
      Object.entries(stack.secrets).map(([key, value]) => {
        const secret = value as { external: boolean; name: string };
        assert.equal(secret.external, true, key);
        return [key, secret.name];
      }),
    );
    const made = [
      names.managementToken,
      names.gossipKey,
      names.agentRecoveryToken,
      ...Object.values(names.tokens),
    ];
    for (const name of made) assert.ok(Object.values(declared).includes(name), name);
  });

  await t.step("each program reads its own token from a secret file", () => {
    for (const [service, program] of Object.entries(STACK_SERVICE_TOKENS)) {
      // deno-lint-ignore no-explicit-any
      const mounts = stack.services[service].secrets as any[];
      const agent = service === "consul" || service === "consul-agent";
      const target = agent ? "consul-agent-token" : "consul-token";
      const mount = mounts.find((entry) => entry.target === target);
      assert.ok(mount, `${service} mounts ${target}`);
      assert.equal(stack.secrets[mount.source].name, names.tokens[program], service);
      assert.equal(mount.mode, 256, `${service}: 0400`);
      if (!agent) {
        assert.equal(
          stack.services[service].environment.CONSUL_HTTP_TOKEN_FILE,
          "/run/secrets/consul-token",
          service,
        );
      }
    }
  });

  await t.step("servers get the management token, client agents do not", () => {
    const targets = (service: string) =>
      // deno-lint-ignore no-explicit-any
      stack.services[service].secrets.map((entry: any) => entry.target).sort();
    assert.deepEqual(targets("consul"), [
      "consul-agent-recovery-token",
      "consul-agent-token",
      "consul-gossip-key",
      "consul-management-token",
    ]);
    assert.deepEqual(targets("consul-agent"), [
      "consul-agent-recovery-token",
      "consul-agent-token",
      "consul-gossip-key",
    ]);
    for (const [service, spec] of Object.entries(stack.services)) {
      if (service === "consul") continue;
      // deno-lint-ignore no-explicit-any
      const mounts = ((spec as any).secrets ?? []) as any[];
      assert.ok(
        !mounts.some((entry) => stack.secrets[entry.source].name === names.managementToken),
        `${service} must not see the management token`,
      );
    }
  });

  await t.step("every agent runs with ACLs on, deny by default, token persistence", () => {
    for (const service of ["consul", "consul-agent"]) {
      const command = stack.services[service].command as string[];
      assert.ok(
        command.includes(
          '-hcl=acl { enabled = true default_policy = "deny" enable_token_persistence = true }',
        ),
        service,
      );
      assert.ok(stack.services[service].healthcheck.test.includes(
        "-token-file=/run/secrets/consul-agent-recovery-token",
      ));
    }
  });

  await t.step("no secret value or secret flag in any command, healthcheck or environment", () => {
    const secretLike = [
      /^-?-?encrypt\b/,
      /(^|[^-])token=/i,
      /\btokens\s*\{/,
      /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i,
      /[A-Za-z0-9+/]{43}=/,
    ];
    for (const [service, spec] of Object.entries(stack.services)) {
      // deno-lint-ignore no-explicit-any
      const { command = [], healthcheck, environment = {} } = spec as any;
      const words = [...command, ...(healthcheck?.test ?? [])] as string[];
      for (const word of words) {
        for (const pattern of secretLike) {
          assert.doesNotMatch(word, pattern, `${service}: ${word}`);
        }
      }
      for (const [name, value] of Object.entries(environment as Record<string, string>)) {
        const named = /TOKEN|SECRET|KEY|PASSWORD|ENCRYPT|AUTH/.test(name);
        // Only file paths may stand where a secret goes.
        if (named) assert.match(name, /_FILE$/, `${service}: ${name}`);
        if (named) assert.match(String(value), /^\/run\/secrets\//, `${service}: ${name}`);
        for (const pattern of secretLike) {
          assert.doesNotMatch(String(value), pattern, `${service}: ${name}`);
        }
      }
    }
  });
});
