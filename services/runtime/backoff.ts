/**
 * The platform's one retry backoff: exponential from a base, capped, with jitter so that instances
 * that lost Consul (or a backend) together do not retry it in lockstep. Used by Consul
 * registration, Consul watches, the local-agent lookup and outlier ejection. The gRPC channel's
 * reconnects keep gRPC's own connection-backoff algorithm (multiplier 1.6, jitter of ±20 %, as
 * grpc-js), which its peers' behaviour is specified against.
 */

/** Options of {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /** The first delay. */
  baseMs: number;
  /** The largest delay. */
  maxMs: number;
  /** Fraction of the delay that is random, 0 (none, the default) to 1 (full jitter). */
  jitter?: number;
  /** Source of numbers in [0, 1), for the jitter. */
  random?: () => number;
}

/** The delay before retry number `attempt` (0 for the first): exponential, capped, with jitter. */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30);
  const capped = Math.min(options.maxMs, options.baseMs * 2 ** exponent);
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0));
  if (jitter === 0) return capped;
  const random = options.random ?? Math.random;
  return capped * (1 - jitter) + capped * jitter * random();
}
