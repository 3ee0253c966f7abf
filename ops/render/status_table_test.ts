import assert from "node:assert/strict";
import type { ServiceStatus } from "../plan/agreement.ts";
import { formatStatusTable } from "./status_table.ts";

const ECHO: ServiceStatus = {
  service: "echo-agent",
  consulName: "agent-echo",
  health: "consul",
  exists: true,
  desired: 2,
  running: 2,
  draining: 0,
  image: "p/echo-agent:e1",
  updateState: null,
  passing: 1,
  warning: 0,
  critical: 1,
  instances: ["echo-agent-a", "echo-agent-b"],
  disagreements: [{ kind: "consul-without-task", id: "echo-agent-b", message: "Consul holds b" }],
  lb: null,
  converged: false,
};

const ROUTER: ServiceStatus = {
  ...ECHO,
  service: "mcp-router",
  consulName: "mcp-router",
  desired: 2,
  passing: 2,
  critical: 0,
  instances: ["mcp-router-a", "mcp-router-b"],
  disagreements: [{ kind: "lb-not-up", id: "mcp-router-b", message: "b is DOWN in HAProxy" }],
  lb: {
    byInstance: { "mcp-router-a": "UP", "mcp-router-b": "DOWN" },
    others: [{ name: "r3", address: "10.0.0.9:8080", state: "DRAIN" }],
    disagreements: [],
    agrees: false,
  },
};

Deno.test("formatStatusTable() aligns columns and flags disagreement", () => {
  const text = formatStatusTable([ECHO]);
  const [header, row, instances, flag] = text.split("\n");
  assert.equal(header.indexOf("RUNNING"), row.indexOf("2/2"));
  assert.match(row, /echo-agent\s+2\/2\s+p\/echo-agent:e1\s+-\s+1\s+0\s+1\s+-\s+NO$/);
  assert.equal(instances, "echo-agent instances: echo-agent-a, echo-agent-b");
  assert.equal(flag, "! Consul holds b");
});

Deno.test("formatStatusTable() shows HAProxy's view of each router next to Consul's", () => {
  const lines = formatStatusTable([ROUTER]).split("\n");
  assert.match(lines[1], /mcp-router\s.*\s1 UP, 1 DRAIN, 1 DOWN\s+NO$/);
  assert.equal(lines[2], "mcp-router instances: mcp-router-a (UP), mcp-router-b (DOWN)");
  assert.equal(lines[3], "mcp-router in HAProxy only: 10.0.0.9:8080 (DRAIN)");
  assert.equal(lines[4], "! b is DOWN in HAProxy");
});
