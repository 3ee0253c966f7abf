/**
 * The worker-wide bound on forecasts in flight. One `plan_itinerary` asks for at most
 * `perCall` days at once, but every call running on the worker together would still fan out
 * without end (60 days a call, any number of calls): past `maxInFlight` forecasts, a day waits its
 * turn, in order of asking, for as long as its call may run (its signal ends the wait).
 */
import { ConfigError, type Env } from "../runtime/config.ts";
import { ToolError } from "../runtime/tool_error.ts";
import type { WeatherSource } from "./service.ts";

/** The itinerary worker's fan-out settings. */
export interface FanOutSettings {
  /** Forecasts one call asks for at once (`ITINERARY_WEATHER_CONCURRENCY`, default 4). */
  readonly perCall: number;
  /** Forecasts in flight on the worker, all calls together (`ITINERARY_MAX_WEATHER_CALLS`, 16). */
  readonly maxInFlight: number;
}

/** Parses the fan-out settings; throws a {@linkcode ConfigError} listing every bad value. */
export function parseFanOutSettings(env: Env): FanOutSettings {
  const problems: string[] = [];
  const count = (name: string, fallback: number): number => {
    const text = env[name]?.trim();
    if (!text) return fallback;
    if (/^\d+$/.test(text) && Number(text) > 0 && Number(text) <= 10_000) return Number(text);
    problems.push(`Invalid ${name} "${text}": expected an integer from 1 to 10000`);
    return fallback;
  };
  const settings = {
    perCall: count("ITINERARY_WEATHER_CONCURRENCY", 4),
    maxInFlight: count("ITINERARY_MAX_WEATHER_CALLS", 16),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(settings);
}

/** Wraps `source` so that at most `maxInFlight` forecasts are asked for at once. */
export function boundedWeatherSource(source: WeatherSource, maxInFlight: number): WeatherSource {
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  function acquire(signal: AbortSignal): Promise<void> {
    if (inFlight < maxInFlight && waiting.length === 0) {
      inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const turn = () => {
        signal.removeEventListener("abort", abandon);
        inFlight++;
        resolve();
      };
      const abandon = () => {
        const at = waiting.indexOf(turn);
        if (at >= 0) waiting.splice(at, 1);
        reject(new ToolError("CANCELLED", "The call ended while its forecasts waited their turn"));
      };
      if (signal.aborted) return abandon();
      waiting.push(turn);
      signal.addEventListener("abort", abandon, { once: true });
    });
  }
  function release(): void {
    inFlight--;
    while (inFlight < maxInFlight && waiting.length > 0) waiting.shift()!();
  }
  return {
    async getWeather(city, date, context) {
      await acquire(context.signal);
      try {
        return await source.getWeather(city, date, context);
      } finally {
        release();
      }
    },
  };
}
