import assert from "node:assert/strict";
import { formatLogLine } from "./log_line.ts";

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
