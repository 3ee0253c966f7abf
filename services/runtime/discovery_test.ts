import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { classifyFailure, type FailureKind, splitHealthEntries } from "./discovery.ts";
import { GrpcCallError } from "./grpc_channel.ts";

Deno.test("classifyFailure() decides by the delivery a call error carries, never its wording", async (t) => {
  const cases: [string, GrpcCallError, boolean, FailureKind][] = [
    [
      "never sent",
      new GrpcCallError(status.UNAVAILABLE, "anything", { delivery: "not-sent" }),
      false,
      "undelivered",
    ],
    [
      "sent, connection lost",
      new GrpcCallError(status.UNAVAILABLE, "anything", { delivery: "sent-unanswered" }),
      false,
      "dropped",
    ],
    [
      // The wording of a lost connection, answered by the server's own code: final.
      "answered UNAVAILABLE",
      new GrpcCallError(status.UNAVAILABLE, "Connection dropped"),
      false,
      "final",
    ],
    [
      "answered with a refused stream's words",
      new GrpcCallError(status.UNAVAILABLE, "Stream refused by server", { delivery: "answered" }),
      false,
      "final",
    ],
    [
      "sent, then we cancelled",
      new GrpcCallError(status.CANCELLED, "Call cancelled", { delivery: "sent-unanswered" }),
      true,
      "final",
    ],
    [
      "our deadline",
      new GrpcCallError(status.DEADLINE_EXCEEDED, "Deadline exceeded", {
        delivery: "sent-unanswered",
      }),
      false,
      "final",
    ],
    [
      "INVALID_ARGUMENT",
      new GrpcCallError(status.INVALID_ARGUMENT, 'Invalid argument "city"'),
      false,
      "final",
    ],
  ];
  for (const [label, error, cancelledByUs, expected] of cases) {
    await t.step(label, () => {
      assert.equal(classifyFailure(error, cancelledByUs), expected);
    });
  }
  await t.step("an error that is not a call error, whatever it says", () => {
    assert.equal(classifyFailure(new Error("Stream refused by server"), false), "final");
    assert.equal(
      classifyFailure({ code: status.UNAVAILABLE, details: "Stream refused by server" }, false),
      "final",
    );
  });
});

Deno.test("splitHealthEntries() separates passing, failing and maintenance instances", () => {
  const entry = (id: string, checks: [string, string][]) => ({
    Node: { Address: "10.0.0.1" },
    Service: { ID: id, Service: "agent-echo", Address: "", Port: 50052, Tags: [], Meta: {} },
    Checks: checks.map(([CheckID, Status]) => ({ CheckID, Status })),
  });
  const view = splitHealthEntries([
    entry("c", [["serfHealth", "passing"], ["service:c", "passing"]]),
    entry("a", [["serfHealth", "passing"], ["service:a", "critical"]]),
    entry("b", [["serfHealth", "passing"], ["service:b", "warning"]]),
    entry("m", [["service:m", "passing"], ["_service_maintenance:m", "critical"]]),
    entry("d", [["serfHealth", "passing"], ["service:d", "passing"]]),
    entry("e", [["serfHealth", "critical"], ["service:e", "passing"]]),
    entry("bad;id", [["service:x", "passing"]]),
  ], "agent-echo");
  assert.deepEqual(view.passing.map((endpoint) => endpoint.id), ["c", "d"]);
  assert.deepEqual(view.failing.map((endpoint) => endpoint.id), ["a", "b", "e"]);
  assert.equal(view.rejected.length, 1);
  assert.equal(view.passing[0].address, "10.0.0.1");
});
