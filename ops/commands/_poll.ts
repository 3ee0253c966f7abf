/** Polls a condition with a bound. Private to the commands. */
import { OpsError } from "../errors.ts";

/** The clock a poll runs on (a {@linkcode CommandContext} is one). */
export interface PollClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Options of {@linkcode pollUntil}. */
export interface PollOptions {
  /** What is waited for, for the timeout message ("platform-2 to be Ready"). */
  what: string;
  timeoutMs: number;
  intervalMs: number;
  /** Called after each check that was not yet there, with the check's own description. */
  onWait?: (detail: string) => void;
}

/** What one check found: the value when done, else why not yet. */
export type PollCheck<T> = { done: true; value: T } | { done: false; detail: string };

/**
 * Calls `check` until it is done and returns its value; throws a `TIMEOUT` {@linkcode OpsError}
 * naming what was waited for and the last detail once `timeoutMs` has passed.
 */
export async function pollUntil<T>(
  clock: PollClock,
  options: PollOptions,
  check: () => Promise<PollCheck<T>>,
): Promise<T> {
  const deadline = clock.now() + options.timeoutMs;
  for (;;) {
    const outcome = await check();
    if (outcome.done) return outcome.value;
    options.onWait?.(outcome.detail);
    if (clock.now() >= deadline) {
      throw new OpsError(
        `Timed out after ${
          Math.round(options.timeoutMs / 1000)
        }s waiting for ${options.what}: ${outcome.detail}`,
        { code: "TIMEOUT" },
      );
    }
    await clock.sleep(options.intervalMs);
  }
}
