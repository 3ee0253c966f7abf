import assert from "node:assert/strict";
import { filesHash, latestOf, planBuild } from "./build.ts";

const DESIRED = {
  consul: "p/consul:c1",
  lb: "p/lb:l1",
  prometheus: "p/prometheus:m1",
  services: "p/services:s2",
  perService: { "echo-agent": "p/echo-agent:e1", "weather-tool": "p/weather-tool:w1" },
};

Deno.test("planBuild() builds everything on a fresh machine", () => {
  assert.deepEqual(planBuild(DESIRED, new Set()), [
    { kind: "build-consul", tag: "p/consul:c1" },
    { kind: "build-lb", tag: "p/lb:l1" },
    { kind: "build-prometheus", tag: "p/prometheus:m1" },
    { kind: "build-services", tag: "p/services:s2" },
    { kind: "tag", source: "p/services:s2", target: "p/echo-agent:e1" },
    { kind: "tag", source: "p/services:s2", target: "p/weather-tool:w1" },
  ]);
});

Deno.test("planBuild() leaves unchanged services alone when another service changed", () => {
  const existing = new Set([
    "p/consul:c1",
    "p/lb:l1",
    "p/prometheus:m1",
    "p/weather-tool:w1",
    "p/services:s1",
  ]);
  assert.deepEqual(planBuild(DESIRED, existing), [
    { kind: "build-services", tag: "p/services:s2" },
    { kind: "tag", source: "p/services:s2", target: "p/echo-agent:e1" },
  ]);
});

Deno.test("planBuild() does nothing when every image exists", () => {
  const existing = new Set([
    "p/consul:c1",
    "p/lb:l1",
    "p/prometheus:m1",
    "p/services:s2",
    "p/echo-agent:e1",
    "p/weather-tool:w1",
  ]);
  assert.deepEqual(planBuild(DESIRED, existing), []);
});

Deno.test("filesHash() depends on contents and paths, not on order", () => {
  const a = { path: "a.ts", content: "1" };
  const b = { path: "b.ts", content: "2" };
  assert.equal(filesHash([a, b]), filesHash([b, a]));
  assert.notEqual(filesHash([a, b]), filesHash([a, { path: "b.ts", content: "3" }]));
  assert.notEqual(filesHash([a]), filesHash([{ path: "c.ts", content: "1" }]));
  assert.notEqual(filesHash([a], { deno: "2.9" }), filesHash([a], { deno: "3.0" }));
  assert.match(filesHash([a]), /^[0-9a-f]{12}$/);
});

Deno.test("latestOf() swaps the tag, keeping a registry port", () => {
  assert.equal(latestOf("agent-platform/echo-agent:abc"), "agent-platform/echo-agent:latest");
  assert.equal(latestOf("host:5000/x"), "host:5000/x:latest");
});
