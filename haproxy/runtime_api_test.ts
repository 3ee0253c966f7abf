import assert from "node:assert/strict";
import { runtimeCommands } from "./runtime_api.ts";

Deno.test("runtimeCommands() refuses a command that holds a separator, before any I/O", async (t) => {
  for (const command of ["set server a/b addr 127.0.0.2;shutdown frontend mcp", "a\nb", "a\rb"]) {
    await t.step(JSON.stringify(command), async () => {
      // The socket does not exist: only the check can answer.
      await assert.rejects(
        () => runtimeCommands("/nonexistent/admin.sock", [command]),
        /holds a separator/,
      );
    });
  }
});
