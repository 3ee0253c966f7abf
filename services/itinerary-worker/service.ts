/** itinerary-worker: a day-by-day plan with each day's weather from the weather tools. */
import type { ServiceDefinition, ToolContext, ToolDefinition } from "../runtime/tool.ts";
import { invalidArgument } from "../runtime/tool_error.ts";
import { PLATFORM_VERSION } from "../runtime/version.ts";
import { parseIsoDate } from "../weather-tool/forecast.ts";
import { DATE_PATTERN, FORECAST_SCHEMA, type WeatherResult } from "../weather-tool/service.ts";
import { type Destination, MAX_TOTAL_DAYS, planDays } from "./plan.ts";

/** Where forecasts come from: the weather tools found in Consul. */
export interface WeatherSource {
  /** The forecast of one day; rejects with a ToolError (UNAVAILABLE when no instance is up). */
  getWeather(city: string, date: string, context: ToolContext): Promise<WeatherResult>;
}

/** Arguments of `plan_itinerary`. */
export interface ItineraryArgs {
  destinations: Destination[];
  start_date: string;
}

/** One day of the result. */
export interface ItineraryDay {
  day: number;
  date: string;
  city: string;
  weather: Omit<WeatherResult, "instance_id" | "city" | "date">;
  weather_instance: string;
}

/** Result of `plan_itinerary`. */
export interface ItineraryResult {
  start_date: string;
  end_date: string;
  total_days: number;
  days: ItineraryDay[];
  weather_instances: string[];
  instance_id: string;
}

/** How many forecasts one call asks for at once, by default. */
export const WEATHER_CONCURRENCY = 4;

function sumDays(destinations: readonly Destination[]): number {
  return destinations.reduce((total, destination) => total + destination.days, 0);
}

/** Builds the `plan_itinerary` tool over a weather source, asking for `perCall` days at once. */
export function createItineraryTool(
  weather: WeatherSource,
  perCall: number = WEATHER_CONCURRENCY,
): ToolDefinition<ItineraryArgs, ItineraryResult> {
  return {
    name: "plan_itinerary",
    title: "Plan an itinerary",
    description: "A day-by-day travel plan for a list of destinations, each with its number of " +
      "days, starting on start_date, with the weather forecast of every day.",
    inputSchema: {
      type: "object",
      properties: {
        destinations: {
          type: "array",
          minItems: 1,
          maxItems: 20,
          items: {
            type: "object",
            properties: {
              city: { type: "string", minLength: 1, maxLength: 200, pattern: "\\S" },
              days: { type: "integer", minimum: 1, maximum: 30 },
            },
            required: ["city", "days"],
            additionalProperties: false,
          },
        },
        start_date: { type: "string", pattern: DATE_PATTERN, description: "First day, YYYY-MM-DD" },
      },
      required: ["destinations", "start_date"],
      additionalProperties: false,
    },
    outputSchema: {
      type: "object",
      properties: {
        start_date: { type: "string" },
        end_date: { type: "string" },
        total_days: { type: "integer" },
        days: {
          type: "array",
          items: {
            type: "object",
            properties: {
              day: { type: "integer" },
              date: { type: "string" },
              city: { type: "string" },
              weather: {
                type: "object",
                properties: {
                  conditions: FORECAST_SCHEMA.properties.conditions,
                  min_c: FORECAST_SCHEMA.properties.min_c,
                  max_c: FORECAST_SCHEMA.properties.max_c,
                  precipitation_chance: FORECAST_SCHEMA.properties.precipitation_chance,
                },
                required: ["conditions", "min_c", "max_c", "precipitation_chance"],
              },
              weather_instance: { type: "string" },
            },
            required: ["day", "date", "city", "weather", "weather_instance"],
          },
        },
        weather_instances: { type: "array", items: { type: "string" } },
        instance_id: { type: "string" },
      },
      required: [
        "start_date",
        "end_date",
        "total_days",
        "days",
        "weather_instances",
        "instance_id",
      ],
    },
    annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    parse(raw) {
      const args = raw as ItineraryArgs;
      if (!parseIsoDate(args.start_date)) {
        throw invalidArgument("start_date", `"${args.start_date}" is not a calendar date`);
      }
      const total = sumDays(args.destinations);
      if (total > MAX_TOTAL_DAYS) {
        throw invalidArgument("destinations", `${total} days in all, more than ${MAX_TOTAL_DAYS}`);
      }
      return args;
    },
    async run(args, context) {
      const planned = planDays(args.destinations, args.start_date);
      const days: ItineraryDay[] = new Array(planned.length);
      let done = 0;
      let next = 0;
      async function worker(): Promise<void> {
        while (next < planned.length) {
          const index = next++;
          const day = planned[index];
          const { instance_id, city: _city, date: _date, ...forecast } = await weather.getWeather(
            day.city,
            day.date,
            context,
          );
          days[index] = { ...day, weather: forecast, weather_instance: instance_id };
          done++;
          context.progress({
            progress: done,
            total: planned.length,
            message: `Day ${day.day}: ${day.city} on ${day.date}, ${forecast.conditions}`,
          });
        }
      }
      await Promise.all(
        Array.from({ length: Math.min(perCall, planned.length) }, worker),
      );
      return {
        start_date: args.start_date,
        end_date: planned[planned.length - 1].date,
        total_days: planned.length,
        days,
        weather_instances: [...new Set(days.map((day) => day.weather_instance))].sort(),
        instance_id: context.instanceId,
      };
    },
  };
}

/** Program name and port of the itinerary worker, known before its weather source is. */
export const ITINERARY_IDENTITY = { program: "itinerary-worker", defaultPort: 50054 } as const;

/** The itinerary-worker service over a weather source; `perCall` days are asked for at once. */
export function createItineraryWorker(
  weather: WeatherSource,
  perCall: number = WEATHER_CONCURRENCY,
): ServiceDefinition {
  return {
    ...ITINERARY_IDENTITY,
    name: "worker-itinerary",
    kind: "worker",
    version: PLATFORM_VERSION,
    tools: [createItineraryTool(weather, perCall)],
  };
}
