/** weather-tool process: `deno run -A services/weather-tool/main.ts`. */
import { readProcessFacts } from "../runtime/main_facts.ts";
import { runService } from "../runtime/run_service.ts";
import { WEATHER_TOOL } from "./service.ts";

await runService(WEATHER_TOOL, () => WEATHER_TOOL, readProcessFacts());
