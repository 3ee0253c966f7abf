/** Summaries of timed calls: counts and latency percentiles. */

/** One summary of a probe run. */
export interface CallSummary {
  calls: number;
  failures: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

/** The nearest-rank percentile `p` (0..100) of `values`; 0 for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

/** Summarises call latencies (milliseconds) and a failure count. */
export function summarizeCalls(latenciesMs: readonly number[], failures: number): CallSummary {
  const round = (value: number) => Math.round(value * 100) / 100;
  return {
    calls: latenciesMs.length + failures,
    failures,
    latencyMs: {
      p50: round(percentile(latenciesMs, 50)),
      p90: round(percentile(latenciesMs, 90)),
      p99: round(percentile(latenciesMs, 99)),
      max: round(percentile(latenciesMs, 100)),
    },
  };
}
