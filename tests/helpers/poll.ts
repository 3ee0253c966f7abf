/**
 * The tests' one polling helper: where a test waits for another process (Consul, HAProxy, a
 * service, Swarm) and there is no event to wait on, it reads the state through this, bounded in
 * time, and the timeout names what was waited for and the last value seen.
 */
import { delay } from "../../services/runtime/delay.ts";

/** Options of {@linkcode eventually} and {@linkcode until}. */
export interface PollOptions {
  /** Give up after this long; default 20 s. */
  timeoutMs?: number;
  /** Pause between reads; default 50 ms. */
  intervalMs?: number;
}

/**
 * Reads `read()` until `accept` holds for its value, and returns that value. A read that throws
 * counts as "not yet"; after `timeoutMs` it throws naming `what`, the last value and last error.
 */
export async function eventually<T>(
  what: string,
  read: () => T | Promise<T>,
  accept: (value: T) => boolean,
  options: PollOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await read();
      if (accept(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await delay(options.intervalMs ?? 50);
  }
  throw new Error(
    `Timed out waiting for ${what}; last value ${JSON.stringify(last)}${
      lastError === undefined ? "" : `, last error ${lastError}`
    }`,
  );
}

/** Waits until `condition()` is true; throws naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  condition: () => boolean | Promise<boolean>,
  options: PollOptions = {},
): Promise<void> {
  await eventually(what, condition, (holds) => holds, options);
}
