/** Durations in HAProxy's notation, as the settings read them and the templates write them. */

/** An hour in ms. */
export const HOUR_MS = 3_600_000;
/** A day in ms. */
export const DAY_MS = 24 * HOUR_MS;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: HOUR_MS };

/** A duration in HAProxy's notation (`500ms`, `30s`, `5m`, `1h`; a bare number is ms) in ms. */
export function parseDurationMs(text: string): number | null {
  const match = /^(\d{1,9})(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) return null;
  return Number(match[1]) * UNIT_MS[match[2] ?? "ms"];
}

/** A duration in ms in HAProxy's notation, in the largest unit that keeps it whole. */
export function formatDuration(ms: number): string {
  for (const unit of ["h", "m", "s"] as const) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
