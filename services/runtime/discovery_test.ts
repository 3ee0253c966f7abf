import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { classifyFailure, type FailureKind, splitHealthEntries } from "./discovery.ts";

Deno.test("classifyFailure() tells undelivered, dropped and final calls apart", async (t) => {
  const refused = "No connection established. Last error: Error: connect ECONNREFUSED " +
    "127.0.0.1:1. Resolution note: ";
  const cases: [string, number, string, boolean, FailureKind][] = [
    ["connection refused", status.UNAVAILABLE, refused, false, "undelivered"],
    ["refused stream", status.UNAVAILABLE, "Stream refused by server", false, "undelivered"],
    [
      "stream not started",
      status.INTERNAL,
      "Failed to start HTTP/2 stream with error x",
      false,
      "undelivered",
    ],
    ["process killed mid-call", status.UNAVAILABLE, "Connection dropped", false, "dropped"],
    ["connection reset", status.UNAVAILABLE, "read ECONNRESET", false, "dropped"],
    [
      "socket gone while writing",
      status.INTERNAL,
      "Received RST_STREAM with code 2 triggered by internal client error: write EPIPE",
      false,
      "dropped",
    ],
    ["forceShutdown() mid-call", status.CANCELLED, "Call cancelled", false, "dropped"],
    ["our own cancellation", status.CANCELLED, "Cancelled on client", true, "final"],
    ["RST_STREAM CANCEL after we aborted", status.CANCELLED, "Call cancelled", true, "final"],
    [
      "UNAVAILABLE raised by the tool",
      status.UNAVAILABLE,
      'No healthy instance of "x"',
      false,
      "final",
    ],
    ["INVALID_ARGUMENT", status.INVALID_ARGUMENT, 'Invalid argument "city"', false, "final"],
    ["deadline", status.DEADLINE_EXCEEDED, "Deadline exceeded", false, "final"],
  ];
  for (const [label, code, details, cancelledByUs, expected] of cases) {
    await t.step(label, () => {
      assert.equal(classifyFailure({ code, details }, cancelledByUs), expected);
    });
  }
  await t.step("an error that is not a gRPC status", () => {
    assert.equal(classifyFailure(new Error("boom"), false), "final");
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
