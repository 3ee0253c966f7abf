import assert from "node:assert/strict";
import type { InvokeEvent } from "../../proto/mod.ts";
import { ClientRequestError } from "./tool.ts";
import { ToolSession } from "./tool_session.ts";

function sink() {
  const events: InvokeEvent[] = [];
  let ended = false;
  let failed: unknown;
  return {
    events,
    get ended() {
      return ended;
    },
    get failed() {
      return failed;
    },
    write: (event: InvokeEvent) => events.push(event),
    end: () => ended = true,
    fail: (error: unknown) => failed = error,
  };
}

const CALL = { tool: "t", argumentsJson: "{}", requestId: "r" };

Deno.test("ToolSession relays the tool's requests and the caller's answers, then the result", async () => {
  const out = sink();
  const controller = new AbortController();
  const session = new ToolSession(
    async (_request, _signal, emit, ask) => {
      emit({ logEvent: { level: "info", logger: "", dataJson: '"asking"' } });
      const answer = await ask("sampling/createMessage", { n: 1 });
      return { resultJson: JSON.stringify(answer), instanceId: "i" };
    },
    out,
    controller.signal,
  );
  const done = session.onMessage({ call: CALL });
  await new Promise((resolve) => setTimeout(resolve, 0));
  const request = out.events.find((event) => event.request)!.request!;
  assert.equal(request.method, "sampling/createMessage");
  session.onMessage({
    answer: { id: request.id, resultJson: '{"ok":1}', errorCode: 0, errorMessage: "" },
  });
  await done;
  assert.deepEqual(out.events.at(-1), { result: { resultJson: '{"ok":1}', instanceId: "i" } });
  assert.equal(out.ended, true);
});

Deno.test("ToolSession turns refusals, bad answers and a vanished caller into ClientRequestErrors", async (t) => {
  const cases: [string, (session: ToolSession, id: number) => void, RegExp][] = [
    [
      "a refusal",
      (s, id) => s.onMessage({ answer: { id, resultJson: "", errorCode: -1, errorMessage: "no" } }),
      /no/,
    ],
    [
      "an answer that is not an object",
      (s, id) => s.onMessage({ answer: { id, resultJson: "[]", errorCode: 0, errorMessage: "" } }),
      /not a JSON object/,
    ],
    ["the caller gone", (s) => s.callerGone(), /Caller went away/],
  ];
  for (const [name, act, pattern] of cases) {
    await t.step(name, async () => {
      const out = sink();
      let seen: unknown;
      const session = new ToolSession(
        async (_r, _s, _e, ask) => {
          try {
            await ask("elicitation/create", {});
          } catch (error) {
            seen = error;
          }
          return { resultJson: "{}", instanceId: "i" };
        },
        out,
        new AbortController().signal,
      );
      const done = session.onMessage({ call: CALL });
      await new Promise((resolve) => setTimeout(resolve, 0));
      act(session, out.events[0].request!.id);
      await done;
      assert.ok(seen instanceof ClientRequestError);
      assert.match(seen.message, pattern);
    });
  }
});
