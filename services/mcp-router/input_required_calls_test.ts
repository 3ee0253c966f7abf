import assert from "node:assert/strict";
import { InputRequiredCalls, UnknownStateError } from "./input_required_calls.ts";
import type { ToolResult } from "./tool_gateway.ts";

function text(value: string): ToolResult {
  return { content: [{ type: "text", text: value }] };
}

Deno.test("InputRequiredCalls parks a call between rounds and resumes it with the answers", async () => {
  const calls = new InputRequiredCalls();
  const first = await calls.start(async (ask) => {
    const [a, b] = await Promise.all([
      ask("sampling/createMessage", { n: 1 }),
      ask("elicitation/create", { n: 2 }),
    ]);
    const c = await ask("sampling/createMessage", { n: 3 });
    return text(JSON.stringify([a, b, c]));
  });
  assert.ok("requests" in first);
  // Requests made together go out in one round.
  assert.deepEqual(Object.values(first.requests).map((r) => r.params.n), [1, 2]);
  assert.equal(calls.size, 1);
  const [keyA, keyB] = Object.keys(first.requests);
  // A partial answer: the unanswered request is asked again.
  const second = await calls.resume(first.state, { [keyA]: { a: true } });
  assert.ok("requests" in second);
  assert.deepEqual(Object.keys(second.requests), [keyB]);
  const third = await calls.resume(second.state, { [keyB]: "not an object" });
  assert.ok("requests" in third);
  const [keyC] = Object.keys(third.requests);
  const done = await calls.resume(third.state, { [keyC]: { c: 1 } });
  assert.ok("result" in done);
  assert.deepEqual(JSON.parse((done.result.content[0] as { text: string }).text), [
    { result: { a: true } },
    { error: { code: -32602, message: `The input response "${keyB}" is not an object` } },
    { result: { c: 1 } },
  ]);
  assert.equal(calls.size, 0);
  await assert.rejects(() => calls.resume(third.state, {}), UnknownStateError);
});

Deno.test("InputRequiredCalls cancels a call whose client never comes back", async () => {
  const calls = new InputRequiredCalls({ timeoutMs: 20 });
  let cancelled = false;
  const outcome = await calls.start(async (ask, signal) => {
    signal.addEventListener("abort", () => cancelled = true);
    const answer = await ask("sampling/createMessage", {});
    return text("error" in answer ? answer.error.message : "answered");
  });
  assert.ok("requests" in outcome);
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(cancelled, true);
  assert.equal(calls.size, 0);
  await assert.rejects(() => calls.resume(outcome.state, {}), UnknownStateError);
});

Deno.test("InputRequiredCalls answers a call that never asks at once", async () => {
  const calls = new InputRequiredCalls();
  const outcome = await calls.start(() => Promise.resolve(text("plain")));
  assert.deepEqual(outcome, { result: text("plain") });
});
