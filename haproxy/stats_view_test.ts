import assert from "node:assert/strict";
import { haproxyState, parseHaproxyServers } from "./stats_view.ts";

// Trimmed from HAProxy 2.6's `/stats;csv` with `stats show-legends` (which adds `addr`).
const CSV = `# pxname,svname,status,addr
stats,FRONTEND,OPEN,
mcp-router,r1,UP,10.0.1.5:8080
mcp-router,r2,DRAIN,10.0.1.6:8080
mcp-router,r3,MAINT,127.0.0.1:1
mcp-router,r4,DOWN 1/2,10.0.1.7:8080
mcp-router,BACKEND,UP,
`;

Deno.test("haproxyState() reduces HAProxy's status texts to four states", async (t) => {
  const cases: [string, string][] = [
    ["UP", "UP"],
    ["UP 1/2", "UP"],
    ["no check", "UP"],
    ["DOWN", "DOWN"],
    ["DOWN 1/2", "DOWN"],
    ["DRAIN", "DRAIN"],
    ["NOLB", "DRAIN"],
    ["MAINT", "MAINT"],
    ["MAINT (via b/s)", "MAINT"],
  ];
  for (const [text, state] of cases) {
    await t.step(`"${text}" is ${state}`, () => assert.equal(haproxyState(text), state));
  }
});

Deno.test("parseHaproxyServers() reads one backend's servers and skips empty slots", () => {
  assert.deepEqual(parseHaproxyServers(CSV, "mcp-router"), [
    { name: "r1", address: "10.0.1.5:8080", state: "UP" },
    { name: "r2", address: "10.0.1.6:8080", state: "DRAIN" },
    { name: "r4", address: "10.0.1.7:8080", state: "DOWN" },
  ]);
  assert.throws(() => parseHaproxyServers("<html>", "mcp-router"), /not CSV/);
});
