/** A deterministic forecast: the same city and date give the same answer on every instance. */

/** A day's forecast. */
export interface Forecast {
  city: string;
  date: string;
  conditions: string;
  min_c: number;
  max_c: number;
  precipitation_chance: number;
}

/** The conditions a forecast can have, driest first. */
export const CONDITIONS = [
  "sunny",
  "partly cloudy",
  "cloudy",
  "fog",
  "light rain",
  "rain",
  "thunderstorms",
  "snow",
] as const;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Parses `YYYY-MM-DD` into a UTC date; undefined unless it is a real calendar date. */
export function parseIsoDate(text: string): Date | undefined {
  const match = DATE.exec(text);
  if (!match) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (
    date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day
  ) {
    return undefined;
  }
  return date;
}

/** Formats a UTC date as `YYYY-MM-DD`. */
export function formatIsoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** 32-bit FNV-1a of a string. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** Computes the forecast for a city (case and spacing ignored) on a valid `YYYY-MM-DD` date. */
export function forecast(city: string, date: string): Forecast {
  const parsed = parseIsoDate(date);
  if (!parsed) throw new RangeError(`Not a calendar date: "${date}"`);
  const key = city.trim().replace(/\s+/g, " ").toLowerCase();
  const cityHash = fnv1a(key);
  const dayHash = fnv1a(`${key}|${date}`);
  // A climate per city (its mean temperature) and a season per date (northern hemisphere).
  const climate = (cityHash % 25) - 5;
  const dayOfYear = (parsed.getTime() - Date.UTC(parsed.getUTCFullYear(), 0, 1)) / 86_400_000;
  const season = -Math.cos((2 * Math.PI * (dayOfYear - 15)) / 365) * 10;
  const mean = climate + season + ((dayHash >>> 8) % 7) - 3;
  const spread = 4 + ((dayHash >>> 16) % 8);
  const min = Math.round(mean - spread / 2);
  const max = min + spread;
  const wetness = (dayHash % 1000) / 1000;
  let index = Math.min(CONDITIONS.length - 2, Math.floor(wetness * (CONDITIONS.length - 1)));
  if (index >= 4 && max <= 1) index = CONDITIONS.length - 1;
  const precipitation = index >= 4 ? 40 + Math.round(wetness * 60) : Math.round(wetness * 40);
  return {
    city: city.trim(),
    date,
    conditions: CONDITIONS[index],
    min_c: min,
    max_c: max,
    precipitation_chance: Math.min(100, precipitation),
  };
}
