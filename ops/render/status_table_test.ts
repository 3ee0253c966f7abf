import assert from "node:assert/strict";
import type { ServiceStatus } from "../plan/agreement.ts";
import { formatStatusTable } from "./status_table.ts";

const ECHO: ServiceStatus = {
  service: "echo-agent",
  consulName: "agent-echo",
  exists: true,
  desired: 2,
  running: 2,
  image: "p/echo-agent:e1",
  updateState: null,
  passing: 1,
  warning: 0,
  critical: 1,
  instances: ["echo-agent-a", "echo-agent-b"],
  disagreements: [{ kind: "consul-without-task", id: "echo-agent-b", message: "Consul holds b" }],
  converged: false,
};

Deno.test("formatStatusTable() aligns columns and flags disagreement", () => {
  const text = formatStatusTable([ECHO]);
  const [header, row, instances, flag] = text.split("\n");
  assert.equal(header.indexOf("RUNNING"), row.indexOf("2/2"));
  assert.match(row, /echo-agent\s+2\/2\s+p\/echo-agent:e1\s+-\s+1\s+0\s+1\s+NO$/);
  assert.equal(instances, "echo-agent instances: echo-agent-a, echo-agent-b");
  assert.equal(flag, "! Consul holds b");
});
