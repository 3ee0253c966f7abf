import assert from "node:assert/strict";
import { parseSwarmServices, specKey, stripDigest } from "./state.ts";

Deno.test("parseSwarmServices() joins services and tasks and strips the stack prefix", () => {
  const services = [{
    ID: "svc1",
    Spec: {
      Name: "st_echo-agent",
      Mode: { Replicated: { Replicas: 2 } },
      TaskTemplate: { ContainerSpec: { Image: "p/echo-agent:1@sha256:abc", Env: ["A=1"] } },
    },
    UpdateStatus: { State: "completed", StartedAt: "t1" },
  }];
  const tasks = [{
    ID: "task2",
    ServiceID: "svc1",
    Slot: 2,
    DesiredState: "running",
    Status: { State: "running", Timestamp: "2026", ContainerStatus: { ContainerID: "c2" } },
    Spec: {
      ContainerSpec: { Env: ["A=1"], Image: "p/echo-agent:1@sha256:abc", DNSConfig: {} },
      Runtime: "container",
    },
    NetworksAttachments: [
      { Addresses: ["10.0.0.5/24"], Network: { Spec: { Name: "ingress" } } },
      { Addresses: ["10.0.1.5/24"], Network: { Spec: { Name: "st_platform" } } },
    ],
  }, {
    ID: "other",
    ServiceID: "svc2",
    DesiredState: "running",
    Status: { State: "running", Timestamp: "2026" },
  }];
  const [echo] = parseSwarmServices("st", services, tasks);
  assert.equal(echo.name, "echo-agent");
  assert.equal(echo.replicas, 2);
  assert.equal(echo.image, "p/echo-agent:1");
  assert.equal(echo.updateState, "completed");
  assert.equal(echo.tasks.length, 1);
  assert.deepEqual(echo.tasks[0].addresses, ["10.0.1.5"]);
  assert.equal(echo.tasks[0].containerId, "c2");
  assert.equal(echo.tasks[0].current, true);
});

Deno.test("specKey() tells a task on an older spec from a current one", () => {
  const template = { ContainerSpec: { Image: "i", Env: ["A=1"] }, ForceUpdate: 1 };
  assert.equal(
    specKey(template),
    specKey({ ForceUpdate: 1, ContainerSpec: { Env: ["A=1"], Image: "i" } }),
  );
  assert.notEqual(specKey(template), specKey({ ...template, ForceUpdate: 2 }));
  assert.notEqual(
    specKey(template),
    specKey({ ...template, ContainerSpec: { Image: "i", Env: ["A=2"] } }),
  );
});

Deno.test("stripDigest() keeps the tag", () => {
  assert.equal(stripDigest("a/b:1@sha256:ff"), "a/b:1");
  assert.equal(stripDigest("a/b:1"), "a/b:1");
});
