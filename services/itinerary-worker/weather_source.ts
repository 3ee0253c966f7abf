/** A {@linkcode WeatherSource} that asks the `tool-weather` instances found in Consul. */
import type { ServiceDiscovery } from "../runtime/discovery.ts";
import { toToolError } from "../runtime/grpc_errors.ts";
import type { WeatherResult } from "../weather-tool/service.ts";
import type { WeatherSource } from "./service.ts";

/** Forecasts through `discovery`, spread over every healthy weather instance by its strategy. */
export function discoveryWeatherSource(discovery: ServiceDiscovery): WeatherSource {
  return {
    async getWeather(city, date, context) {
      try {
        const { response } = await discovery.invoke(
          {
            tool: "get_weather",
            argumentsJson: JSON.stringify({ city, date }),
            requestId: context.requestId,
          },
          { signal: context.signal, idempotent: true, deadlineMs: 10_000 },
        );
        return JSON.parse(response.resultJson) as WeatherResult;
      } catch (error) {
        throw toToolError(error, `tool-weather failed for "${city}" on ${date}`);
      }
    },
  };
}
