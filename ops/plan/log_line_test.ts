import assert from "node:assert/strict";
import { formatLogLine, mergeInstanceLogs } from "./log_line.ts";

Deno.test("formatLogLine() prefixes the instance ID", () => {
  const line = "agent-platform_echo-agent.2.y7h8ikwzq0a1b2c3d4e5f6g7h@vm    | " +
    '2026-01-01T00:00:00.000000000Z {"msg":"call"}';
  assert.equal(
    formatLogLine(line, "echo-agent"),
    'echo-agent-y7h8ikwzq0a1b2c3d4e5f6g7h | 2026-01-01T00:00:00.000000000Z {"msg":"call"}',
  );
});

Deno.test("formatLogLine() moves the timestamp of --timestamps after the instance", () => {
  const line =
    "2026-01-01T00:00:00.1Z agent-platform_echo-agent.1.y7h8ikwzq0a1b2c3d4e5f6g7h@vm | hi";
  assert.equal(
    formatLogLine(line, "echo-agent"),
    "echo-agent-y7h8ikwzq0a1b2c3d4e5f6g7h | 2026-01-01T00:00:00.1Z hi",
  );
});

Deno.test("formatLogLine() passes other lines through", () => {
  assert.equal(formatLogLine("error from daemon", "echo-agent"), "error from daemon");
});

Deno.test("mergeInstanceLogs() interleaves instances by timestamp", () => {
  const merged = mergeInstanceLogs([
    {
      instance: "a",
      lines: ["2026-01-01T00:00:01.000000000Z one", "2026-01-01T00:00:03.000000000Z three"],
    },
    { instance: "b", lines: ["2026-01-01T00:00:02.000000000Z two", ""] },
  ]);
  assert.deepEqual(merged, [
    "a | 2026-01-01T00:00:01.000000000Z one",
    "b | 2026-01-01T00:00:02.000000000Z two",
    "a | 2026-01-01T00:00:03.000000000Z three",
  ]);
});
