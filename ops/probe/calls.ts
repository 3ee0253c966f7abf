/** What the probe sends to each service and how it checks every answer. */
import { forecast } from "../../services/weather-tool/forecast.ts";

/** One kind of call the probe makes: the request for call `n` and the check of its answer. */
export interface ProbeCall {
  tool: string;
  /** Arguments of call number `n`. */
  args(n: number): Record<string, unknown>;
  /** Undefined when `result` is the right answer to call `n`, else what is wrong with it. */
  verify(n: number, result: Record<string, unknown>): string | undefined;
}

const CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Kyoto"];

function dateOf(n: number): string {
  const day = new Date(Date.UTC(2026, 0, 1) + (n % 365) * 86_400_000);
  return day.toISOString().slice(0, 10);
}

const ECHO: ProbeCall = {
  tool: "echo",
  args: (n) => ({ message: `probe-${n}` }),
  verify(n, result) {
    if (result.message !== `probe-${n}`) {
      return `echo returned "${result.message}" for "probe-${n}"`;
    }
    if (typeof result.instance_id !== "string" || result.instance_id === "") {
      return "echo returned no instance_id";
    }
    return undefined;
  },
};

const WEATHER: ProbeCall = {
  tool: "get_weather",
  args: (n) => ({ city: CITIES[n % CITIES.length], date: dateOf(n) }),
  verify(n, result) {
    const expected = forecast(CITIES[n % CITIES.length], dateOf(n)) as unknown as Record<
      string,
      unknown
    >;
    for (const [key, value] of Object.entries(expected)) {
      if (JSON.stringify(result[key]) !== JSON.stringify(value)) {
        return `get_weather field "${key}" is ${JSON.stringify(result[key])}, expected ${
          JSON.stringify(value)
        }`;
      }
    }
    return undefined;
  },
};

const ITINERARY: ProbeCall = {
  tool: "plan_itinerary",
  args: (n) => ({
    destinations: [{ city: CITIES[n % CITIES.length], days: 1 + (n % 3) }, {
      city: "Quito",
      days: 1,
    }],
    start_date: dateOf(n),
  }),
  verify(n, result) {
    const days = 2 + (n % 3);
    if (result.total_days !== days) {
      return `plan_itinerary total_days is ${result.total_days}, expected ${days}`;
    }
    if (!Array.isArray(result.days) || result.days.length !== days) {
      return `plan_itinerary returned ${
        Array.isArray(result.days) ? result.days.length : "no"
      } days`;
    }
    return undefined;
  },
};

/** Probe calls by Consul service name. */
export const PROBE_CALLS: Readonly<Record<string, ProbeCall>> = Object.freeze({
  "agent-echo": ECHO,
  "tool-weather": WEATHER,
  "worker-itinerary": ITINERARY,
});
