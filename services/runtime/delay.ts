/**
 * The platform's one abortable delay. Loops that wait between rounds (Consul watches, registration,
 * the local-agent probe, tools that sleep) wait through it, so a stop never waits out a timer and no
 * test leaks one.
 */

/** Options of {@linkcode delay}. */
export interface DelayOptions {
  /** Ends the wait early; the promise then resolves (the caller checks `signal.aborted`). */
  signal?: AbortSignal;
}

/** Resolves after `ms` milliseconds, or at once when `options.signal` aborts (or had aborted). */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const signal = options.signal;
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
