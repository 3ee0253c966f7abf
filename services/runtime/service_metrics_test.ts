import assert from "node:assert/strict";
import { createServiceMetrics, UNKNOWN_TOOL } from "./service_metrics.ts";

/** The value of the series named exactly `series` in `text`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("createServiceMetrics() starts every known tool at zero and idle", () => {
  const metrics = createServiceMetrics(["echo"], { inFlight: () => 0 });
  const text = metrics.render();
  assert.equal(
    sample(text, 'platform_service_calls_total{rpc="Invoke",tool="echo",outcome="OK"}'),
    0,
  );
  assert.equal(sample(text, "platform_service_calls_in_flight"), 0);
  assert.equal(sample(text, "platform_service_draining"), 0);
});

Deno.test("createServiceMetrics() counts calls by RPC, tool and outcome", () => {
  let inFlight = 3;
  const metrics = createServiceMetrics(["echo"], { inFlight: () => inFlight });
  metrics.record({ rpc: "Invoke", tool: "echo", outcome: "OK", durationMs: 2 });
  metrics.record({ rpc: "Invoke", tool: "echo", outcome: "OK", durationMs: 700 });
  metrics.record({ rpc: "InvokeStream", tool: "echo", outcome: "INVALID_ARGUMENT", durationMs: 1 });
  let text = metrics.render();
  assert.equal(
    sample(text, 'platform_service_calls_total{rpc="Invoke",tool="echo",outcome="OK"}'),
    2,
  );
  assert.equal(
    sample(
      text,
      'platform_service_calls_total{rpc="InvokeStream",tool="echo",outcome="INVALID_ARGUMENT"}',
    ),
    1,
  );
  assert.equal(sample(text, 'platform_service_call_duration_seconds_count{tool="echo"}'), 3);
  assert.equal(
    sample(text, 'platform_service_call_duration_seconds_bucket{tool="echo",le="0.5"}'),
    2,
  );
  assert.equal(sample(text, 'platform_service_call_duration_seconds_sum{tool="echo"}'), 0.703);
  assert.equal(sample(text, "platform_service_calls_in_flight"), 3);
  inFlight = 0;
  metrics.setDraining(true);
  text = metrics.render();
  assert.equal(sample(text, "platform_service_calls_in_flight"), 0);
  assert.equal(sample(text, "platform_service_draining"), 1);
});

Deno.test("createServiceMetrics() keeps callers' names out of label values", () => {
  const metrics = createServiceMetrics(["echo"], { inFlight: () => 0 });
  for (let i = 0; i < 50; i++) {
    metrics.record({ rpc: `Rpc${i}`, tool: `tool-${i}"}`, outcome: `CODE${i}`, durationMs: 1 });
  }
  const text = metrics.render();
  assert.equal(
    sample(
      text,
      `platform_service_calls_total{rpc="other",tool="${UNKNOWN_TOOL}",outcome="INTERNAL"}`,
    ),
    50,
  );
  assert.equal(
    text.split("\n").filter((line) => line.startsWith("platform_service_calls_total{")).length,
    2,
  );
  assert.doesNotMatch(text, /tool-/);
});
