/** What every benchmark reads the same way: its numeric flags and the machine's load. */

/**
 * The number after `--<name>` in the benchmark's arguments, `fallback` without the flag; anything
 * outside [min, max] (or not whole, unless `fractional`) ends the benchmark with exit code 2.
 */
export function numberFlag(
  name: string,
  fallback: number,
  options: { min?: number; max?: number; fractional?: boolean } = {},
): number {
  const { min = 1, max = Number.MAX_SAFE_INTEGER, fractional = false } = options;
  const index = Deno.args.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const raw = Deno.args[index + 1];
  const value = Number(raw);
  const whole = fractional ? Number.isFinite(value) : Number.isSafeInteger(value);
  if (raw === undefined || raw.trim() === "" || !whole || value < min || value > max) {
    const kind = fractional ? "a number" : "a whole number";
    console.error(`error: --${name} must be ${kind} from ${min} to ${max}, got "${raw ?? ""}"`);
    Deno.exit(2);
  }
  return value;
}

/** The 1, 5 and 15 minute load averages, for the report ("unknown" where /proc has none). */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}
