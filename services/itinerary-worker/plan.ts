/** Pure planning of an itinerary: which city on which day. */
import { formatIsoDate, parseIsoDate } from "../weather-tool/forecast.ts";

/** One stop of a trip. */
export interface Destination {
  city: string;
  days: number;
}

/** One day of the plan, before its weather is known. */
export interface PlannedDay {
  day: number;
  date: string;
  city: string;
}

/** Longest trip accepted, in days. */
export const MAX_TOTAL_DAYS = 60;

/** Lays the destinations out day by day from `startDate` (a valid `YYYY-MM-DD`). */
export function planDays(destinations: readonly Destination[], startDate: string): PlannedDay[] {
  const start = parseIsoDate(startDate);
  if (!start) throw new RangeError(`Not a calendar date: "${startDate}"`);
  const days: PlannedDay[] = [];
  for (const destination of destinations) {
    for (let index = 0; index < destination.days; index++) {
      const date = new Date(start.getTime() + days.length * 86_400_000);
      days.push({ day: days.length + 1, date: formatIsoDate(date), city: destination.city.trim() });
    }
  }
  return days;
}
