/**
 * Passive outlier ejection: an endpoint that fails to take calls several times in a row is left out
 * of picks for a while, before Consul's health check notices it is gone.
 *
 * The design, in the spirit of Envoy's outlier detection:
 * - Only delivery failures count (connection refused, connection dropped); a success resets both the
 *   failure streak and the escalation.
 * - After `threshold` consecutive failures the endpoint is ejected for
 *   `backoffDelay(ejections)`: `baseMs`, doubled per ejection in a row, capped at `maxMs`.
 * - When the backoff has passed it is readmitted on probation: its streak is not reset, so one more
 *   failure ejects it again, for twice as long; one success clears its record.
 * - The last endpoint is never left out: {@linkcode Ejector.admit} returns every candidate when all
 *   of them are ejected, since an instance that may have recovered beats failing every call.
 *
 * Pure: the caller passes the clock reading to every method.
 */
import { backoffDelay, type BackoffOptions } from "./backoff.ts";

/** Options of {@linkcode Ejector}. */
export interface EjectorOptions {
  /** Consecutive delivery failures that eject an endpoint; default 2. */
  threshold?: number;
  /** First ejection length; default 1 s. */
  baseMs?: number;
  /** Longest ejection; default 30 s. */
  maxMs?: number;
}

interface EndpointRecord {
  failures: number;
  ejections: number;
  ejectedUntil: number;
}

/** Ejection state of a set of endpoints, keyed by endpoint ID. */
export class Ejector {
  readonly #threshold: number;
  readonly #backoff: BackoffOptions;
  readonly #records = new Map<string, EndpointRecord>();

  constructor(options: EjectorOptions = {}) {
    this.#threshold = Math.max(1, options.threshold ?? 2);
    this.#backoff = { baseMs: options.baseMs ?? 1_000, maxMs: options.maxMs ?? 30_000 };
  }

  /** Records a delivery failure; returns the end of the ejection it caused, if any. */
  recordFailure(id: string, now: number): number | undefined {
    const record = this.#records.get(id) ?? { failures: 0, ejections: 0, ejectedUntil: 0 };
    this.#records.set(id, record);
    record.failures += 1;
    if (record.failures < this.#threshold || now < record.ejectedUntil) return undefined;
    record.ejectedUntil = now + backoffDelay(record.ejections, this.#backoff);
    record.ejections += 1;
    return record.ejectedUntil;
  }

  /** Records a delivered call: the endpoint's record is cleared. */
  recordSuccess(id: string): void {
    this.#records.delete(id);
  }

  /** Whether the endpoint is ejected at `now`. */
  isEjected(id: string, now: number): boolean {
    return (this.#records.get(id)?.ejectedUntil ?? 0) > now;
  }

  /** The candidates that are not ejected, or all of them when every one is. */
  admit<T extends { readonly id: string }>(candidates: readonly T[], now: number): readonly T[] {
    const admitted = candidates.filter((candidate) => !this.isEjected(candidate.id, now));
    return admitted.length === 0 ? candidates : admitted;
  }

  /** Forgets endpoints not in `ids` (they left Consul). */
  retain(ids: ReadonlySet<string>): void {
    for (const id of this.#records.keys()) {
      if (!ids.has(id)) this.#records.delete(id);
    }
  }
}
