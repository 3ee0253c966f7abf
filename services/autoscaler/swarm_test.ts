import assert from "node:assert/strict";
import { scaledSpec, shortServiceName, updateInProgress } from "./swarm.ts";

Deno.test("scaledSpec() changes the replica count and nothing else", () => {
  const spec = {
    Name: "s_echo-agent",
    Labels: { "platform.autoscale.min": "1" },
    TaskTemplate: { ContainerSpec: { Image: "i:1" } },
    Mode: { Replicated: { Replicas: 1 } },
    UpdateConfig: { Order: "start-first" },
  };
  assert.deepEqual(scaledSpec(spec, 3), { ...spec, Mode: { Replicated: { Replicas: 3 } } });
  assert.equal(spec.Mode.Replicated.Replicas, 1);
  assert.throws(() => scaledSpec({ Mode: { Global: {} } }, 2), /Only replicated services/);
});

Deno.test("updateInProgress() holds during updates, rollbacks and paused updates", async (t) => {
  const cases: [unknown, string | null][] = [
    [undefined, null],
    [null, null],
    [{ State: "completed" }, null],
    [{ State: "rollback_completed" }, null],
    [{ State: "updating" }, "updating"],
    [{ State: "paused" }, "paused"],
    [{ State: "rollback_started" }, "rollback_started"],
    [{ State: 7 }, null],
  ];
  for (const [status, expected] of cases) {
    await t.step(JSON.stringify(status) ?? "undefined", () => {
      assert.equal(updateInProgress(status), expected);
    });
  }
});

Deno.test("shortServiceName() strips the stack prefix only when the stack label says so", () => {
  const stack = { "com.docker.stack.namespace": "agent-platform" };
  assert.equal(shortServiceName("agent-platform_echo-agent", stack), "echo-agent");
  assert.equal(shortServiceName("other_echo-agent", stack), "other_echo-agent");
  assert.equal(shortServiceName("echo", {}), "echo");
});
