/**
 * Reads a policy's metric from Prometheus's HTTP API (`/api/v1/query`). Plain `fetch`: one GET
 * with a timeout; an npm client would add nothing. Prometheus's answer is checked field by field.
 */
import type { MetricReading } from "./decide.ts";
import type { Policy } from "./policy.ts";

/** A failed query, with what went wrong. */
export class PrometheusError extends Error {
  /** `UNREACHABLE`: no answer; `REFUSED`: an error status; `BAD_ANSWER`: not a result we read. */
  readonly code: "UNREACHABLE" | "REFUSED" | "BAD_ANSWER";
  constructor(
    code: PrometheusError["code"],
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "PrometheusError";
    this.code = code;
  }
}

/** Options of {@linkcode queryScalar}. */
export interface QueryOptions {
  /** Timeout of the request, in ms (default 5000). */
  timeoutMs?: number;
}

/**
 * The value of an instant query that yields at most one series (`sum(...)`); undefined when it
 * yields none.
 */
export async function queryScalar(
  baseUrl: string,
  query: string,
  options: QueryOptions = {},
): Promise<number | undefined> {
  const url = `${baseUrl}/api/v1/query?query=${encodeURIComponent(query)}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 5000) });
  } catch (error) {
    throw new PrometheusError(
      "UNREACHABLE",
      `Cannot reach Prometheus at "${baseUrl}": ${(error as Error).message}`,
      { cause: error },
    );
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    throw new PrometheusError(
      "BAD_ANSWER",
      `Prometheus at "${baseUrl}" answered ${response.status} without JSON`,
      { cause: error },
    );
  }
  const answer = body as {
    status?: unknown;
    error?: unknown;
    data?: { resultType?: unknown; result?: unknown };
  };
  if (!response.ok || answer?.status !== "success") {
    const reason = typeof answer?.error === "string" ? answer.error : `HTTP ${response.status}`;
    throw new PrometheusError("REFUSED", `Prometheus refused "${query}": ${reason}`);
  }
  const result = answer.data?.result;
  if (answer.data?.resultType !== "vector" || !Array.isArray(result)) {
    throw new PrometheusError("BAD_ANSWER", `Prometheus answered "${query}" with no vector`);
  }
  if (result.length === 0) return undefined;
  if (result.length > 1) {
    throw new PrometheusError(
      "BAD_ANSWER",
      `Prometheus answered "${query}" with ${result.length} series, expected one`,
    );
  }
  const pair = (result[0] as { value?: unknown }).value;
  if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[1] !== "string") {
    throw new PrometheusError("BAD_ANSWER", `Prometheus answered "${query}" with no value`);
  }
  const value = Number(pair[1]);
  return Number.isNaN(value) ? undefined : value;
}

/**
 * The PromQL of a policy's metric, summed over every instance of its program: calls per second
 * over `windowSeconds` (`rps`) or calls in flight averaged over it (`inflight`).
 */
export function metricQuery(policy: Pick<Policy, "metric" | "program">, windowSeconds: number) {
  // `program` is checked by parsePolicy (letters, digits, ".", "_", "-"): it cannot leave the quotes.
  const selector = `{program="${policy.program}"}`;
  const window = `${Math.max(1, Math.round(windowSeconds))}s`;
  return policy.metric === "rps"
    ? `sum(rate(platform_service_calls_total${selector}[${window}]))`
    : `sum(avg_over_time(platform_service_calls_in_flight${selector}[${window}]))`;
}

/** Reads a policy's metric; a failure becomes a missing reading that says why. */
export async function readMetric(
  baseUrl: string,
  policy: Pick<Policy, "metric" | "program">,
  options: QueryOptions & { windowSeconds: number },
): Promise<MetricReading> {
  const query = metricQuery(policy, options.windowSeconds);
  try {
    const total = await queryScalar(baseUrl, query, options);
    if (total === undefined) {
      return {
        kind: "missing",
        reason: `Prometheus has no series for ${query} (instances not scraped yet?)`,
      };
    }
    return { kind: "value", total };
  } catch (error) {
    if (error instanceof PrometheusError) return { kind: "missing", reason: error.message };
    throw error;
  }
}
