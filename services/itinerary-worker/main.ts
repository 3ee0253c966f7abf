/** itinerary-worker process: `deno run -A services/itinerary-worker/main.ts`. */
import { ConfigError } from "../runtime/config.ts";
import { ServiceDiscovery } from "../runtime/discovery.ts";
import { readProcessFacts } from "../runtime/main_facts.ts";
import { runService } from "../runtime/run_service.ts";
import { boundedWeatherSource, parseFanOutSettings } from "./bounded_weather_source.ts";
import { createItineraryWorker, ITINERARY_IDENTITY } from "./service.ts";
import { discoveryWeatherSource } from "./weather_source.ts";

const facts = readProcessFacts();
let fanOut;
try {
  fanOut = parseFanOutSettings(facts.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`error: ${ITINERARY_IDENTITY.program}: ${error.message}`);
  Deno.exit(error.exitCode);
}
const { perCall, maxInFlight } = fanOut;

await runService(ITINERARY_IDENTITY, ({ consul, logger, onShutdown }) => {
  const weather = new ServiceDiscovery("tool-weather", { consul, logger });
  weather.start();
  onShutdown(() => weather.close());
  const source = boundedWeatherSource(discoveryWeatherSource(weather), maxInFlight);
  return createItineraryWorker(source, perCall);
}, facts);
