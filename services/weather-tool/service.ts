/** weather-tool: a deterministic forecast for a city and a date. */
import type { ServiceDefinition, ToolDefinition } from "../runtime/tool.ts";
import { invalidArgument } from "../runtime/tool_error.ts";
import { PLATFORM_VERSION } from "../runtime/version.ts";
import { type Forecast, forecast, parseIsoDate } from "./forecast.ts";

/** Arguments of `get_weather`. */
export interface WeatherArgs {
  city: string;
  date: string;
}

/** Result of `get_weather`: the forecast and the instance that computed it. */
export interface WeatherResult extends Forecast {
  instance_id: string;
}

/** JSON Schema of a forecast, shared with the itinerary worker's output schema. */
export const FORECAST_SCHEMA = {
  type: "object",
  properties: {
    city: { type: "string" },
    date: { type: "string" },
    conditions: { type: "string" },
    min_c: { type: "number" },
    max_c: { type: "number" },
    precipitation_chance: { type: "number", minimum: 0, maximum: 100 },
  },
  required: ["city", "date", "conditions", "min_c", "max_c", "precipitation_chance"],
};

/** The pattern of a `YYYY-MM-DD` date in schemas. */
export const DATE_PATTERN = "^\\d{4}-\\d{2}-\\d{2}$";

/** The `get_weather` tool. */
export const GET_WEATHER_TOOL: ToolDefinition<WeatherArgs, WeatherResult> = {
  name: "get_weather",
  title: "Weather forecast",
  description: "The forecast for a city on a date: conditions, minimum and maximum temperature " +
    "in °C, and the chance of precipitation in percent.",
  inputSchema: {
    type: "object",
    properties: {
      city: {
        type: "string",
        minLength: 1,
        maxLength: 200,
        pattern: "\\S",
        description: "City name",
      },
      date: { type: "string", pattern: DATE_PATTERN, description: "Day, as YYYY-MM-DD" },
    },
    required: ["city", "date"],
    additionalProperties: false,
  },
  outputSchema: {
    ...FORECAST_SCHEMA,
    properties: { ...FORECAST_SCHEMA.properties, instance_id: { type: "string" } },
    required: [...FORECAST_SCHEMA.required, "instance_id"],
  },
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  parse(raw) {
    const args = raw as WeatherArgs;
    if (!parseIsoDate(args.date)) {
      throw invalidArgument("date", `"${args.date}" is not a calendar date`);
    }
    return args;
  },
  run: (args, context) => ({ ...forecast(args.city, args.date), instance_id: context.instanceId }),
};

/** The weather-tool service. */
export const WEATHER_TOOL: ServiceDefinition = {
  name: "tool-weather",
  program: "weather-tool",
  kind: "tool",
  version: PLATFORM_VERSION,
  defaultPort: 50053,
  tools: [GET_WEATHER_TOOL],
};
