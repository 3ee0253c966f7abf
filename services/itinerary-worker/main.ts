/** itinerary-worker process: `deno run -A services/itinerary-worker/main.ts`. */
import { ServiceDiscovery } from "../runtime/discovery.ts";
import { readProcessFacts } from "../runtime/main_facts.ts";
import { runService } from "../runtime/run_service.ts";
import { createItineraryWorker, ITINERARY_IDENTITY } from "./service.ts";
import { discoveryWeatherSource } from "./weather_source.ts";

await runService(ITINERARY_IDENTITY, ({ consul, logger, onShutdown }) => {
  const weather = new ServiceDiscovery("tool-weather", { consul, logger });
  weather.start();
  onShutdown(() => weather.close());
  return createItineraryWorker(discoveryWeatherSource(weather));
}, readProcessFacts());
