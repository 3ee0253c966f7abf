import assert from "node:assert/strict";
import { SILENT_LOGGER } from "../runtime/logger.ts";
import type { ResourceWatch } from "./backend_rpc.ts";
import { ResourceSubscriptions, SubscriptionError } from "./resource_subscriptions.ts";

/** A watch opener whose watches the test ends and updates by hand. */
function fakeOpener() {
  const opened: { uri: string; update: () => void; end: () => void; cancelled: boolean }[] = [];
  return {
    opened,
    watchResource(_service: string, uri: string, onUpdate: () => void): ResourceWatch {
      let end = () => {};
      const ended = new Promise<Error | undefined>((resolve) => end = () => resolve(undefined));
      const entry = { uri, update: onUpdate, end, cancelled: false };
      opened.push(entry);
      return { ended, instance: `i${opened.length}`, cancel: () => entry.cancelled = true };
    },
  };
}

Deno.test("ResourceSubscriptions keeps one watch per URI, reopens it, and says so", async () => {
  const rpc = fakeOpener();
  const updates: [string, string[]][] = [];
  const subscriptions = new ResourceSubscriptions({
    rpc,
    resolve: (uri) => uri.startsWith("test://") ? "svc" : undefined,
    onUpdated: (uri, sessions) => updates.push([uri, [...sessions]]),
    logger: SILENT_LOGGER,
    retryMs: { first: 1, max: 1 },
  });
  subscriptions.subscribe("a", "test://x");
  subscriptions.subscribe("b", "test://x");
  assert.equal(rpc.opened.length, 1);
  rpc.opened[0].update();
  assert.deepEqual(updates, [["test://x", ["a", "b"]]]);
  // The instance goes away: a new watch, and a hint that the resource may have changed.
  rpc.opened[0].end();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(rpc.opened.length, 2);
  assert.equal(subscriptions.openWatches, 1);
  assert.deepEqual(updates.at(-1), ["test://x", ["a", "b"]]);
  subscriptions.unsubscribe("a", "test://x");
  assert.equal(rpc.opened[1].cancelled, false);
  subscriptions.dropSession("b");
  assert.equal(rpc.opened[1].cancelled, true);
  assert.equal(subscriptions.size, 0);
  assert.throws(() => subscriptions.subscribe("a", "other://y"), SubscriptionError);
  subscriptions.close();
});

Deno.test("ResourceSubscriptions refuses past its bounds", () => {
  const subscriptions = new ResourceSubscriptions({
    rpc: fakeOpener(),
    resolve: () => "svc",
    onUpdated: () => {},
    logger: SILENT_LOGGER,
    maxPerSession: 2,
    maxTotal: 3,
  });
  subscriptions.subscribe("a", "test://1");
  subscriptions.subscribe("a", "test://2");
  assert.throws(() => subscriptions.subscribe("a", "test://3"), /at most 2 per session/);
  subscriptions.subscribe("b", "test://1");
  assert.throws(() => subscriptions.subscribe("c", "test://1"), SubscriptionError);
  subscriptions.close();
});
