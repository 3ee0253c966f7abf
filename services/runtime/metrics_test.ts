import assert from "node:assert/strict";
import { MetricsRegistry } from "./metrics.ts";

Deno.test("MetricsRegistry renders counters, gauges and cumulative histograms", () => {
  const registry = new MetricsRegistry();
  const calls = registry.counter("calls_total", "Calls.");
  const inFlight = registry.gauge("in_flight", "In flight.");
  const latency = registry.histogram("latency_seconds", "Latency.", [0.1, 1]);
  calls.inc({ tool: "echo" });
  calls.inc({ tool: "echo" });
  calls.inc({ tool: 'a"b' });
  inFlight.add({ instance: "e-1" }, 2);
  inFlight.add({ instance: "e-1" }, -1);
  latency.observe({ tool: "echo" }, 0.05);
  latency.observe({ tool: "echo" }, 0.5);
  latency.observe({ tool: "echo" }, 5);
  assert.equal(
    registry.render(),
    [
      "# HELP calls_total Calls.",
      "# TYPE calls_total counter",
      'calls_total{tool="echo"} 2',
      'calls_total{tool="a\\"b"} 1',
      "# HELP in_flight In flight.",
      "# TYPE in_flight gauge",
      'in_flight{instance="e-1"} 1',
      "# HELP latency_seconds Latency.",
      "# TYPE latency_seconds histogram",
      'latency_seconds_bucket{tool="echo",le="0.1"} 1',
      'latency_seconds_bucket{tool="echo",le="1"} 2',
      'latency_seconds_bucket{tool="echo",le="+Inf"} 3',
      'latency_seconds_sum{tool="echo"} 5.55',
      'latency_seconds_count{tool="echo"} 3',
      "",
    ].join("\n"),
  );
});
