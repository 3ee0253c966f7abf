/**
 * Autoscaling end to end (issue 13) on a real Swarm with real Prometheus: the ops tool deploys its
 * own stack (`ap-e2e-autoscale`, every host port free), then load steps through the `probe`
 * container drive echo-agent up and down by its policy labels (stack.yml runs prometheus and the
 * autoscaler).
 *
 * The policy is set with label updates (they restart no task): min 1, max 3, 20 calls/s per
 * instance, down window 45 s. The autoscaler evaluates every 15 s over a 30 s rate window.
 */
import assert from "node:assert/strict";
import { freePort } from "./helpers/consul_dev.ts";
import { E2E } from "./helpers/e2e_gate.ts";
import {
  docker,
  explain,
  opsRun,
  serviceLabels,
  setLabels,
  specReplicas,
  startProbe,
} from "./helpers/stack_ops.ts";
import { until } from "./helpers/poll.ts";
import { delay } from "../services/runtime/delay.ts";

const STACK = Deno.env.get("E2E_AUTOSCALE_STACK") ?? "ap-e2e-autoscale";
const ENV = {
  PLATFORM_STACK: STACK,
  PLATFORM_CONSUL_PORT: String(freePort()),
  PLATFORM_MCP_PORT: String(freePort()),
  PLATFORM_STATS_PORT: String(freePort()),
  PLATFORM_PROMETHEUS_PORT: String(freePort()),
  PLATFORM_TIMEOUT: "300",
};
const ECHO = `${STACK}_echo-agent`;
const PROMETHEUS = `${STACK}_prometheus`;
const P = "platform.autoscale.";
const EVALUATION_S = 15;
const DOWN_WINDOW_S = 45;
const POLICY = {
  [`${P}min`]: "1",
  [`${P}max`]: "3",
  [`${P}metric`]: "rps",
  [`${P}target`]: "20",
  [`${P}up_window`]: "0s",
  [`${P}down_window`]: `${DOWN_WINDOW_S}s`,
  [`${P}max_step`]: "2",
};

const ops = (...args: string[]) => opsRun(ENV, args);

/** `autoscale status echo` as JSON: the row of echo-agent and the table's note. */
async function echoStatus() {
  const run = await ops("autoscale", "status", "echo");
  assert.equal(run.code, 0, explain(run));
  return { row: run.json.services[0], note: run.json.note as string | null };
}

/** Records echo's replica count every second while `body` runs; returns the highest seen. */
async function maxReplicasDuring(body: () => Promise<void>): Promise<number> {
  let highest = await specReplicas(ECHO);
  let done = false;
  const watcher = (async () => {
    while (!done) {
      highest = Math.max(highest, await specReplicas(ECHO));
      await delay(1000);
    }
  })();
  try {
    await body();
  } finally {
    done = true;
    await watcher;
  }
  return highest;
}

Deno.test({
  name: "echo-agent scales with its load on a real Swarm, by its policy labels",
  ignore: !E2E,
  async fn(t) {
    const clean = await ops("destroy", "--volumes");
    assert.equal(clean.code, 0, explain(clean));
    try {
      await t.step("deploy: Prometheus and the autoscaler run beside the services", async () => {
        const run = await ops("deploy");
        assert.equal(run.code, 0, explain(run));
        await setLabels(ECHO, POLICY);
        const status = await echoStatus();
        assert.match(status.row.policy, /^1-3 replicas, 20 calls\/s per instance/);
        await until("Prometheus ready", async () => {
          const response = await fetch(`http://127.0.0.1:${ENV.PLATFORM_PROMETHEUS_PORT}/-/ready`)
            .catch(() => undefined);
          await response?.body?.cancel();
          return response?.ok ?? false;
        }, { timeoutMs: 120_000, intervalMs: 1000 });
      });

      await t.step("a load step that needs 3 instances scales echo 1 -> 3, 0 failed", async () => {
        const probe = await startProbe(ENV, "echo", 60, 150);
        // Two evaluations after the 30 s window has seen the load.
        const loadedAt = Date.now();
        await until(
          "3 echo replicas",
          async () => (await specReplicas(ECHO)) === 3,
          { timeoutMs: 30_000 + 2 * EVALUATION_S * 1000 + 30_000, intervalMs: 1000 },
        );
        const reached = Date.now() - loadedAt;
        console.log(`echo reached 3 replicas ${(reached / 1000).toFixed(1)}s after the load step`);
        const report = await probe.result();
        assert.equal(report.code, 0, explain(report));
        assert.equal(report.json.failures, 0);
        // The new instances took traffic.
        assert.equal(Object.keys(report.json.instances).length, 3, JSON.stringify(report.json));
      });

      await t.step(
        "load stops: echo stays at 3 for the down window, then returns to 1, 0 failed",
        async () => {
          const stoppedAt = Date.now();
          const limitS = DOWN_WINDOW_S + 30 + 4 * EVALUATION_S;
          // A light probe keeps checking every answer while instances leave; it runs for the
          // whole time the scale-in may take (the probe container reports when it ends).
          const probe = await startProbe(ENV, "echo", 2, limitS);
          await until(
            "echo back to 1",
            async () => (await specReplicas(ECHO)) === 1,
            { timeoutMs: limitS * 1000, intervalMs: 1000 },
          );
          const after = (Date.now() - stoppedAt) / 1000;
          console.log(`echo returned to 1 replica ${after.toFixed(1)}s after the load stopped`);
          assert.ok(after >= DOWN_WINDOW_S, `scaled in after ${after}s, before the down window`);
          const report = await probe.result();
          assert.equal(report.code, 0, explain(report));
          assert.equal(report.json.failures, 0, explain(report));
        },
      );

      await t.step("steady load at the target changes nothing for 3 minutes", async () => {
        // 18 calls/s on 1 instance: inside the 10 % band of 20.
        const highest = await maxReplicasDuring(async () => {
          const probe = await startProbe(ENV, "echo", 18, 180);
          const report = await probe.result();
          assert.equal(report.json.failures, 0, explain(report));
        });
        assert.equal(highest, 1);
        assert.equal(await specReplicas(ECHO), 1);
      });

      await t.step("a policy with max 2 never exceeds 2", async () => {
        await setLabels(ECHO, { [`${P}max`]: "2" });
        const highest = await maxReplicasDuring(async () => {
          const probe = await startProbe(ENV, "echo", 80, 90);
          const report = await probe.result();
          assert.equal(report.json.failures, 0, explain(report));
        });
        assert.equal(highest, 2);
        await setLabels(ECHO, { [`${P}max`]: "3", [`${P}down_window`]: "15s" });
        await until("echo back to 1", async () => (await specReplicas(ECHO)) === 1, {
          timeoutMs: 120_000,
          intervalMs: 1000,
        });
        await setLabels(ECHO, { [`${P}down_window`]: `${DOWN_WINDOW_S}s` });
      });

      await t.step("paused: load scales nothing and status says paused", async () => {
        const pause = await ops("autoscale", "pause", "echo");
        assert.equal(pause.code, 0, explain(pause));
        assert.equal((await serviceLabels(ECHO))[`${P}paused`], "true");
        const highest = await maxReplicasDuring(async () => {
          const probe = await startProbe(ENV, "echo", 60, 60);
          await probe.result();
        });
        assert.equal(highest, 1);
        const status = await echoStatus();
        assert.equal(status.row.state, "paused");
        const resume = await ops("autoscale", "resume", "echo");
        assert.equal(resume.code, 0, explain(resume));
        assert.equal((await serviceLabels(ECHO))[`${P}paused`], undefined);
      });

      await t.step(
        "Prometheus stopped: nothing is scaled and the autoscaler says why",
        async () => {
          await docker("service", "scale", "--detach", `${PROMETHEUS}=0`);
          try {
            const highest = await maxReplicasDuring(async () => {
              const probe = await startProbe(ENV, "echo", 60, 60);
              await probe.result();
            });
            assert.equal(highest, 1);
            const status = await echoStatus();
            assert.equal(status.row.state, "no_data");
            assert.match(status.row.why, /not scaling without data: Cannot reach Prometheus/);
          } finally {
            await docker("service", "scale", "--detach", `${PROMETHEUS}=1`);
          }
          assert.equal(await specReplicas(PROMETHEUS), 1);
        },
      );
    } finally {
      const destroy = await ops("destroy", "--volumes");
      assert.equal(destroy.code, 0, explain(destroy));
    }
  },
});
