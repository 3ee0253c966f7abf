/**
 * End to end on a real single-node Swarm: the ops tool deploys its own stack (`ap-e2e`, Consul,
 * the MCP endpoint and HAProxy's stats on free ports), scales, updates under load (MCP clients
 * with live sessions through the routers and through HAProxy), survives a bad image and a killed
 * container, prunes and destroys. One deployment is shared by the steps, in order.
 * They run with `PLATFORM_E2E=1`, which `./platform test` sets (it installs and starts Docker).
 */
import assert from "node:assert/strict";
import { deriveConsulSecrets } from "../ops/plan/consul_secrets.ts";
import { PLATFORM_SERVICES } from "../ops/plan/services.ts";
import { conformanceE2eStep } from "./helpers/conformance_suite.ts";
import { E2E as RUN_E2E } from "./helpers/e2e_gate.ts";
import { docker, e2eStack, explain, type OpsRun, statusOf } from "./helpers/e2e_stack.ts";
import { until } from "./helpers/poll.ts";
import { initializeBody } from "./router_harness.ts";

const E2E = e2eStack("ap-e2e");
const { stack: STACK, ops, startProbe, startHostMcpProbe, passingIds, allIds, runningTaskIds } =
  E2E;
const CONSUL_URL = E2E.consulUrl;
const MCP_URL = E2E.mcpUrl;
const STATS_URL = E2E.statsUrl;
const BROKEN_IMAGE = `agent-platform/broken:${STACK}`;
/** Every service of the stack file. */
const E2E_SERVICES = PLATFORM_SERVICES.length;

/** A request to the published Consul port without a token: status and body. */
async function anonymous(path: string, init: RequestInit = {}) {
  const response = await fetch(`${CONSUL_URL}${path}`, init);
  return { status: response.status, text: await response.text() };
}

async function dockerWithInput(input: string, ...args: string[]): Promise<void> {
  const child = new Deno.Command("docker", {
    args,
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
    env: { DOCKER_BUILDKIT: "0" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const output = await child.output();
  if (!output.success) {
    throw new Error(`docker ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
}

Deno.test({
  name: "the ops tool runs the platform on a real single-node Swarm",
  ignore: !RUN_E2E,
  async fn(t) {
    // A stack left over from an interrupted run is removed first.
    const clean = await ops("destroy", "--volumes");
    assert.equal(clean.code, 0, explain(clean));

    try {
      await t.step("deploy from nothing: every service passes in Consul", async () => {
        const run = await ops("deploy");
        assert.equal(run.code, 0, explain(run));
        assert.equal(run.json.stack, STACK);
        assert.equal(run.json.urls.consulUi, `${CONSUL_URL}/ui/`);
        assert.equal(run.json.urls.mcp, MCP_URL);
        assert.equal(run.json.urls.stats, STATS_URL);
        // deno-lint-ignore no-explicit-any
        assert.ok(run.json.services.every((entry: any) => entry.converged), explain(run));
        for (const service of ["agent-echo", "tool-weather", "worker-itinerary", "mcp-router"]) {
          assert.equal((await passingIds(service)).length, 1, service);
        }
        // deploy waited until HAProxy marked every router UP.
        const router = statusOf(run, "mcp-router");
        assert.deepEqual(Object.values(router.lb.byInstance), ["UP"], explain(run));
        // The steps below set echo's count themselves: its autoscaling policy must not change it.
        const pause = await ops("autoscale", "pause", "echo");
        assert.equal(pause.code, 0, explain(pause));
      });

      await t.step("the front door wants the bearer token and the stats credentials", async () => {
        const status = await ops("status");
        assert.equal(status.code, 0, explain(status));
        assert.equal(status.json.auth.mcp, "token");
        const tokenFile = status.json.auth.tokenFile as string;
        assert.equal((await Deno.stat(tokenFile)).mode! & 0o777, 0o600);
        assert.equal(
          (await Deno.stat(tokenFile.slice(0, tokenFile.lastIndexOf("/")))).mode! & 0o777,
          0o700,
        );
        const initialize = initializeBody("e2e");
        const post = (headers: Record<string, string>) =>
          fetch(MCP_URL, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
              ...headers,
            },
            body: initialize,
          });
        const denied = await post({});
        await denied.body?.cancel();
        assert.equal(denied.status, 401);
        assert.equal(denied.headers.get("www-authenticate"), 'Bearer realm="mcp-router"');
        const wrong = await post({ authorization: "Bearer not-the-token-0123456789" });
        await wrong.body?.cancel();
        assert.equal(wrong.status, 401);
        const served = await post({ authorization: `Bearer ${await E2E.mcpToken()}` });
        await served.body?.cancel();
        assert.equal(served.status, 200);
        const stats = await fetch(STATS_URL);
        await stats.body?.cancel();
        assert.equal(stats.status, 401);
      });

      await t.step("Consul: ACLs deny anonymous requests, the management token works", async () => {
        const file = await Deno.stat(E2E.managementTokenFile);
        assert.equal(file.mode! & 0o777, 0o600);
        const management = (await Deno.readTextFile(E2E.managementTokenFile)).trim();
        const register = await anonymous("/v1/agent/service/register", {
          method: "PUT",
          body: JSON.stringify({ Name: "mcp-router", ID: "rogue", Address: "127.0.0.1", Port: 1 }),
        });
        assert.equal(register.status, 403, register.text);
        const write = await anonymous("/v1/kv/platform/lb-strategy/agent-echo", {
          method: "PUT",
          body: "random",
        });
        assert.equal(write.status, 403, write.text);
        assert.equal((await anonymous("/v1/kv/platform/lb-strategy/agent-echo")).status, 403);
        assert.equal((await anonymous("/v1/agent/self")).status, 403);
        // Consul 1.8 filters catalog reads: 200 with nothing in it.
        assert.deepEqual(JSON.parse((await anonymous("/v1/catalog/services")).text), {});
        assert.deepEqual(JSON.parse((await anonymous("/v1/health/service/mcp-router")).text), []);

        const self = await E2E.consulFetch("/v1/acl/token/self");
        assert.equal(self.status, 200);
        assert.match(await self.text(), /global-management/);
        const catalog = await (await E2E.consulFetch("/v1/catalog/services")).json();
        for (const name of ["agent-echo", "mcp-router", "platform-autoscaler"]) {
          assert.ok(name in catalog, name);
        }
        // The UI: its pages load, and its API shows the services to the management token only.
        assert.equal((await anonymous("/ui/")).status, 200);
        const ui = await (await E2E.consulFetch("/v1/internal/ui/services")).json();
        // deno-lint-ignore no-explicit-any
        assert.ok(ui.some((entry: any) => entry.Name === "mcp-router"), JSON.stringify(ui));
        assert.deepEqual(JSON.parse((await anonymous("/v1/internal/ui/services")).text), []);
        // deno-lint-ignore no-explicit-any
        const agent = await (await E2E.consulFetch("/v1/agent/self")).json() as any;
        assert.equal(agent.Stats.serf_lan.encrypted, "true");

        // No secret in any service's spec (command, environment, healthcheck): files only.
        const derived = await deriveConsulSecrets(management, ["agent", "agent-echo", "lb"]);
        const values = [
          management,
          derived.gossipKey,
          derived.agentRecoveryToken,
          ...Object.values(derived.tokens),
        ];
        for (const service of PLATFORM_SERVICES) {
          const spec = await docker("service", "inspect", `${STACK}_${service.name}`);
          for (const value of values) assert.ok(!spec.includes(value), service.name);
          assert.match(spec, /consul-token|consul-agent-token/, service.name);
        }
      });

      await t.step("status --json agrees with Docker and Consul", async () => {
        const run = await ops("status");
        assert.equal(run.code, 0, explain(run));
        assert.equal(run.json.agreed, true, explain(run));
        const echo = statusOf(run, "echo-agent");
        assert.deepEqual(echo.instances, await passingIds("agent-echo"));
        const tasks = await runningTaskIds("echo-agent");
        assert.deepEqual(echo.instances, tasks.map((id) => `echo-agent-${id}`));
        assert.equal(echo.running, tasks.length);
        const replicas = await docker(
          "service",
          "inspect",
          "--format",
          "{{.Spec.Mode.Replicated.Replicas}}",
          `${STACK}_weather-tool`,
        );
        assert.equal(statusOf(run, "weather-tool").desired, Number(replicas.trim()));
      });

      await t.step("every container runs as uid 10001, read-only, with no capability", async () => {
        const ids = (await docker(
          "ps",
          "--quiet",
          "--filter",
          `label=com.docker.stack.namespace=${STACK}`,
        )).split("\n").filter((id) => id);
        const seen = new Set<string>();
        for (const id of ids) {
          // deno-lint-ignore no-explicit-any
          const [container] = JSON.parse(await docker("inspect", id)) as any[];
          const name = container.Config.Labels["com.docker.swarm.service.name"] as string;
          seen.add(name);
          assert.match(container.Config.User, /^10001:\d+$/, name);
          assert.equal(container.HostConfig.ReadonlyRootfs, true, name);
          assert.deepEqual(container.HostConfig.CapDrop, ["ALL"], name);
          assert.deepEqual(container.HostConfig.CapAdd ?? [], [], name);
          assert.ok(container.HostConfig.PidsLimit > 0, `${name}: pids limit`);
          assert.equal((await docker("exec", id, "id", "-u")).trim(), "10001", name);
          // The program itself (PID 1): real, effective, saved and file-system uids, and no
          // capability in effect, permitted, or left in the bounding set to gain.
          const status = await docker("exec", id, "cat", "/proc/1/status");
          assert.match(status, /^Uid:\t10001\t10001\t10001\t10001$/m, name);
          for (const set of ["CapEff", "CapPrm", "CapBnd"]) {
            assert.match(status, new RegExp(`^${set}:\t0{16}$`, "m"), `${name}: ${set}`);
          }
          const write = await new Deno.Command("docker", {
            args: ["exec", id, "touch", "/etc/written"],
            stdout: "null",
            stderr: "piped",
          }).output();
          assert.equal(write.success, false, `${name} wrote to its root file system`);
          assert.match(new TextDecoder().decode(write.stderr), /Read-only file system/, name);
        }
        const expected = ["consul", "lb", "prometheus", "autoscaler", "mcp-router", "echo-agent"];
        for (const service of expected) assert.ok(seen.has(`${STACK}_${service}`), service);
      });

      await t.step(
        "deploy again: nothing rebuilt, nothing restarted, a ghost removed",
        async () => {
          const tasks = await runningTaskIds("echo-agent");
          // A passing registration no task owns (as an earlier stack leaves when Consul keeps its
          // data): with it echo has 2 of 1 passing, and deploy agrees only once it is gone.
          const ghost = `echo-agent-${"g".repeat(25)}`;
          const register = await E2E.consulFetch("/v1/agent/service/register", {
            method: "PUT",
            body: JSON.stringify({
              ID: ghost,
              Name: "agent-echo",
              Address: "10.0.0.9",
              Port: 50051,
              Check: { TTL: "10m", Status: "passing" },
            }),
          });
          assert.equal(register.status, 200, await register.text());
          assert.ok((await passingIds("agent-echo")).includes(ghost));
          const run = await ops("deploy");
          assert.equal(run.code, 0, explain(run));
          assert.deepEqual(run.json.removedRegistrations, [ghost], explain(run));
          assert.deepEqual(await allIds("agent-echo"), tasks.map((id) => `echo-agent-${id}`));
          // deno-lint-ignore no-explicit-any
          const actions = run.json.actions.map((action: any) => action.action);
          assert.equal(actions.length, E2E_SERVICES, explain(run));
          assert.ok(actions.every((action: string) => action === "unchanged"), explain(run));
          assert.doesNotMatch(run.stderr, /^building /m);
          assert.match(run.stderr, /Consul ACLs: policies and tokens up to date/, explain(run));
          assert.deepEqual(await runningTaskIds("echo-agent"), tasks);
        },
      );

      await t.step("MCP clients call every tool, in a container and through HAProxy", async () => {
        const inside = await ops("probe", "router", "--rate", "20", "--duration", "4");
        assert.equal(inside.code, 0, explain(inside));
        assert.deepEqual(Object.keys(inside.json.tools).sort(), [
          "echo",
          "get_weather",
          "plan_itinerary",
        ]);
        const host = await (await startHostMcpProbe(20, 4)).result();
        assert.equal(host.code, 0, explain(host));
        assert.equal(host.json.failures, 0, explain(host));
        assert.deepEqual(Object.keys(host.json.tools).sort(), [
          "echo",
          "get_weather",
          "plan_itinerary",
        ]);
        const stats = await fetch(STATS_URL, { headers: await E2E.statsHeaders() });
        assert.equal(stats.status, 200);
        assert.match(await stats.text(), /mcp-router/);
        const metrics = await fetch(STATS_URL.replace(/\/stats$/, "/metrics"), {
          headers: await E2E.statsHeaders(),
        });
        assert.equal(metrics.status, 200);
        assert.match(
          await metrics.text(),
          /^haproxy_backend_active_servers\{proxy="mcp-router"\} 1$/m,
        );
      });

      await t.step(
        "the MCP conformance suite passes through HAProxy with conformance-server deployed",
        () => conformanceE2eStep(E2E),
      );

      await t.step("scale echo 3: three passing instances, all reached by a probe", async () => {
        const run = await ops("scale", "echo", "3");
        assert.equal(run.code, 0, explain(run));
        const ids = await passingIds("agent-echo");
        assert.equal(new Set(ids).size, 3);
        const probe = await ops("probe", "echo", "--rate", "30", "--duration", "5");
        assert.equal(probe.code, 0, explain(probe));
        assert.equal(probe.json.failures, 0);
        assert.deepEqual(Object.keys(probe.json.instances).sort(), ids);
      });

      await t.step("scale all 2, then scale down", async () => {
        const all = await ops("scale", "all", "2");
        assert.equal(all.code, 0, explain(all));
        for (const service of ["agent-echo", "tool-weather", "worker-itinerary", "mcp-router"]) {
          assert.equal((await passingIds(service)).length, 2, service);
        }
        const down = await ops("scale", "down");
        assert.equal(down.code, 0, explain(down));
        for (const service of ["agent-echo", "tool-weather", "worker-itinerary", "mcp-router"]) {
          assert.equal((await passingIds(service)).length, 1, service);
        }
      });

      await t.step("scale rejects bad input with exit code 2", async () => {
        for (const args of [["echo", "-1"], ["echo", "x"], ["nope", "2"]]) {
          const run = await ops("scale", ...args);
          assert.equal(run.code, 2, explain(run));
          assert.match(run.stderr, /^error: /m);
        }
      });

      await t.step("update echo --force under a 50 calls/s probe: 0 failed calls", async () => {
        const before = await passingIds("agent-echo");
        const probe = await startProbe("echo", 50, 40);
        const update = await ops("update", "echo", "--force");
        const result = await probe.result();
        assert.equal(update.code, 0, explain(update));
        assert.equal(result.json?.failures, 0, explain(result));
        const after = await passingIds("agent-echo");
        assert.equal(after.length, 1);
        assert.notDeepEqual(after, before);
        // The probe saw both the old and the new instance: it ran across the replacement.
        assert.ok(before.every((id) => id in result.json.instances), explain(result));
        assert.ok(after.every((id) => id in result.json.instances), explain(result));
      });

      await t.step("rollback echo returns to the previous spec", async () => {
        const before = await passingIds("agent-echo");
        const run = await ops("rollback", "echo");
        assert.equal(run.code, 0, explain(run));
        const after = await passingIds("agent-echo");
        assert.equal(after.length, 1);
        assert.notDeepEqual(after, before);
      });

      await t.step(
        "an image that cannot start: Swarm rolls back, exit 1, echo keeps serving",
        async () => {
          await dockerWithInput(
            `FROM agent-platform/services:latest\nENTRYPOINT ["/bin/sh", "-c", "exit 3"]\n`,
            "build",
            "--tag",
            BROKEN_IMAGE,
            "-",
          );
          const before = statusOf(await ops("status"), "echo-agent").image;
          const run = await ops("update", "echo", "--image", BROKEN_IMAGE);
          assert.equal(run.code, 1, explain(run));
          assert.match(run.stderr, /^error: Swarm rolled back the update of "echo-agent"/m);
          const status = await ops("status");
          assert.equal(statusOf(status, "echo-agent").image, before);
          const probe = await ops("probe", "echo", "--rate", "20", "--duration", "3");
          assert.equal(probe.code, 0, explain(probe));
          assert.equal(probe.json.failures, 0);
        },
      );

      await t.step(
        "docker kill of an echo container under a probe: 0 failed, replaced, pruned",
        async () => {
          const scaled = await ops("scale", "echo", "2");
          assert.equal(scaled.code, 0, explain(scaled));
          const victimTask = (await runningTaskIds("echo-agent"))[0];
          const victimId = `echo-agent-${victimTask}`;
          const container = (await docker(
            "inspect",
            "--format",
            "{{.Status.ContainerStatus.ContainerID}}",
            victimTask,
          )).trim();
          const probe = await startProbe("echo", 50, 20);
          // Kill it once it has answered the probe: the kill then cuts a flow of calls.
          await probe.printed(new RegExp(`probe: first answer from ${victimId}\\b`));
          await docker("kill", container);
          const result = await probe.result();
          assert.equal(result.json?.failures, 0, explain(result));
          assert.ok(victimId in result.json.instances, "the probe reached the killed instance");

          await until("Swarm to replace the killed task", async () => {
            const status = await ops("status");
            return statusOf(status, "echo-agent").converged === true;
          }, { timeoutMs: 120_000, intervalMs: 1000 });
          const prune = await ops("prune");
          assert.equal(prune.code, 0, explain(prune));
          const tasks = (await runningTaskIds("echo-agent")).map((id) => `echo-agent-${id}`);
          for (const id of await allIds("agent-echo")) {
            assert.ok(tasks.includes(id), `"${id}" has no running task`);
          }
          const status = await ops("status");
          assert.deepEqual(statusOf(status, "echo-agent").disagreements, []);
          assert.equal(statusOf(status, "echo-agent").passing, 2);
        },
      );

      await t.step(
        "update router --force under 50 calls/s with live sessions: 0 failed, 0 lost",
        async () => {
          const probe = await startProbe("router", 50, 40);
          const update = await ops("update", "router", "--force");
          const result = await probe.result();
          assert.equal(update.code, 0, explain(update));
          assert.equal(result.json?.failures, 0, explain(result));
          assert.equal(result.json.sessions.lost, 0, explain(result));
          // The sessions began on the old router and went on on its replacement.
          assert.equal(Object.keys(result.json.routers).length, 2, explain(result));
        },
      );

      await t.step(
        "scale router 3, update router and echo under 50 calls/s through HAProxy: 0 failed",
        async () => {
          const probe = await startHostMcpProbe(50, 300);
          const runs: OpsRun[] = [];
          for (
            const args of [
              ["scale", "router", "3"],
              ["update", "router", "--force"],
              ["update", "echo", "--force"],
            ]
          ) {
            runs.push(await ops(...args));
            if (runs.at(-1)!.code !== 0) break;
          }
          probe.stop();
          const result = await probe.result();
          for (const run of runs) assert.equal(run.code, 0, explain(run));
          assert.equal(result.json?.failures, 0, explain(result));
          assert.equal(result.json.sessions.lost, 0, explain(result));
          assert.ok(result.json.calls > 500, explain(result));
          const status = await ops("status");
          const router = statusOf(status, "mcp-router");
          assert.equal(router.converged, true, explain(status));
          assert.deepEqual(
            Object.values(router.lb.byInstance),
            ["UP", "UP", "UP"],
            explain(status),
          );
          assert.deepEqual(router.lb.others, [], explain(status));
        },
      );

      await t.step("logs prefix every line with its instance", async () => {
        const run = await ops("logs", "echo", "--since", "10m");
        assert.equal(run.code, 0, explain(run));
        const lines = run.stdout.trim().split("\n");
        assert.ok(lines.length > 0);
        assert.ok(lines.every((line) => /^echo-agent-[a-z0-9]{25} \| /.test(line)), lines[0]);
        // Without a service: every service's instances, merged.
        const all = await ops("logs", "--since", "10m");
        assert.equal(all.code, 0, explain(all));
        const prefixes = new Set(
          all.stdout.trim().split("\n").map((line) => line.slice(0, line.indexOf(" | "))),
        );
        for (const service of ["echo-agent", "mcp-router", "lb"]) {
          assert.ok([...prefixes].some((prefix) => prefix.startsWith(`${service}-`)), service);
        }
      });
    } finally {
      await t.step("destroy leaves no service, container or network of the stack", async () => {
        const run = await ops("destroy", "--volumes");
        assert.equal(run.code, 0, explain(run));
        const label = `label=com.docker.stack.namespace=${STACK}`;
        assert.equal((await docker("service", "ls", "-q", "--filter", label)).trim(), "");
        assert.equal((await docker("container", "ls", "-aq", "--filter", label)).trim(), "");
        assert.equal((await docker("network", "ls", "-q", "--filter", label)).trim(), "");
        assert.equal((await docker("volume", "ls", "-q", "--filter", label)).trim(), "");
        const secrets = await docker(
          "secret",
          "ls",
          "-q",
          "--filter",
          `label=agent-platform.stack=${STACK}`,
        );
        assert.equal(secrets.trim(), "");
        await assert.rejects(() => Deno.stat(E2E.managementTokenFile), Deno.errors.NotFound);
        await docker("image", "rm", "--force", BROKEN_IMAGE).catch(() => "");
      });
    }
  },
});
