import assert from "node:assert/strict";
import { parseHaproxyServers } from "../../haproxy/stats_view.ts";
import { joinLbView } from "./haproxy_view.ts";
import type { ConsulInstance } from "./state.ts";

// Trimmed from HAProxy 2.6's `/stats;csv` with `stats show-legends` (which adds `addr`).
const CSV = `# pxname,svname,status,addr
stats,FRONTEND,OPEN,
mcp-router,r1,UP,10.0.1.5:8080
mcp-router,r2,DRAIN,10.0.1.6:8080
mcp-router,r3,MAINT,127.0.0.1:1
mcp-router,r4,DOWN 1/2,10.0.1.7:8080
mcp-router,BACKEND,UP,
`;

function router(id: string, address: string, status: ConsulInstance["status"]): ConsulInstance {
  return { id, service: "mcp-router", address, port: 8080, status };
}

Deno.test("joinLbView() agrees when every passing router is UP and nothing else is", () => {
  const view = {
    reachable: true as const,
    servers: [{ name: "r1", address: "10.0.1.5:8080", state: "UP" as const }, {
      name: "r2",
      address: "10.0.1.6:8080",
      state: "DRAIN" as const,
    }],
  };
  const join = joinLbView(view, [router("a", "10.0.1.5", "passing")]);
  assert.deepEqual(join.byInstance, { a: "UP" });
  assert.deepEqual(join.others.map((server) => server.name), ["r2"]);
  assert.equal(join.agrees, true);
});

Deno.test("joinLbView() flags each way HAProxy and Consul disagree", () => {
  const servers = parseHaproxyServers(CSV, "mcp-router");
  const join = joinLbView({ reachable: true, servers }, [
    router("a", "10.0.1.5", "critical"),
    router("b", "10.0.1.7", "passing"),
    router("c", "10.0.1.8", "passing"),
  ]);
  assert.deepEqual(join.byInstance, { a: "UP", b: "DOWN", c: "absent" });
  assert.deepEqual(join.disagreements.map((entry) => [entry.kind, entry.id]), [
    ["lb-sends-to-unknown", "a"],
    ["lb-not-up", "b"],
    ["lb-not-up", "c"],
  ]);
  assert.equal(join.agrees, false);
  const unreachable = joinLbView({ reachable: false, error: "connection refused" }, []);
  assert.equal(unreachable.agrees, false);
  assert.match(unreachable.disagreements[0].message, /connection refused/);
});

Deno.test("joinLbView() takes the slot in service, and leaves freed slots out", () => {
  const servers = [
    { name: "r1", address: "10.0.1.5:8080", state: "MAINT" as const },
    { name: "r2", address: "10.0.1.5:8080", state: "UP" as const },
    { name: "r3", address: "10.0.1.9:8080", state: "MAINT" as const },
  ];
  const join = joinLbView({ reachable: true, servers }, [router("a", "10.0.1.5", "passing")]);
  assert.deepEqual(join.byInstance, { a: "UP" });
  assert.deepEqual(join.others, []);
  assert.equal(join.agrees, true);
});
