import assert from "node:assert/strict";
import { ConfigError } from "../runtime/config.ts";
import type { ToolContext } from "../runtime/tool.ts";
import type { WeatherResult } from "../weather-tool/service.ts";
import { boundedWeatherSource, parseFanOutSettings } from "./bounded_weather_source.ts";
import type { WeatherSource } from "./service.ts";

/** A source whose answers the test releases one by one, counting what is in flight. */
function heldSource() {
  let inFlight = 0;
  let most = 0;
  const pending: (() => void)[] = [];
  const source: WeatherSource = {
    getWeather(city, date) {
      inFlight++;
      most = Math.max(most, inFlight);
      return new Promise<WeatherResult>((resolve) => {
        pending.push(() => {
          inFlight--;
          resolve({ city, date } as WeatherResult);
        });
      });
    },
  };
  return { source, pending, most: () => most };
}

function context(signal = new AbortController().signal): ToolContext {
  return { signal } as ToolContext;
}

Deno.test("boundedWeatherSource() keeps at most maxInFlight forecasts in flight, in order", async () => {
  const held = heldSource();
  const bounded = boundedWeatherSource(held.source, 2);
  const answers = Array.from({ length: 5 }, (_, i) => bounded.getWeather(`c${i}`, "d", context()));
  const order: string[] = [];
  answers.forEach((answer) => answer.then((result) => order.push(result.city)));
  while (order.length < 5) {
    await Promise.resolve();
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.ok(held.pending.length <= 2);
    held.pending.shift()?.();
  }
  assert.equal(held.most(), 2);
  assert.deepEqual(order, ["c0", "c1", "c2", "c3", "c4"]);
});

Deno.test("boundedWeatherSource() lets a cancelled call leave the queue", async () => {
  const held = heldSource();
  const bounded = boundedWeatherSource(held.source, 1);
  const first = bounded.getWeather("a", "d", context());
  const cancel = new AbortController();
  const second = bounded.getWeather("b", "d", context(cancel.signal));
  cancel.abort();
  await assert.rejects(second, /ended while its forecasts waited/);
  held.pending.shift()!();
  assert.equal((await first).city, "a");
  const third = bounded.getWeather("c", "d", context());
  await new Promise((resolve) => setTimeout(resolve, 0));
  held.pending.shift()!();
  assert.equal((await third).city, "c");
});

Deno.test("parseFanOutSettings() has defaults and refuses bad values", () => {
  assert.deepEqual({ ...parseFanOutSettings({}) }, { perCall: 4, maxInFlight: 16 });
  assert.throws(
    () =>
      parseFanOutSettings({ ITINERARY_WEATHER_CONCURRENCY: "0", ITINERARY_MAX_WEATHER_CALLS: "x" }),
    (error) =>
      error instanceof ConfigError && error.exitCode === 2 &&
      error.problems.length === 2 && /ITINERARY_WEATHER_CONCURRENCY "0"/.test(error.message),
  );
});
