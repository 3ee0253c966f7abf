/** echo-agent process: `deno run -A services/echo-agent/main.ts`. */
import { readProcessFacts } from "../runtime/main_facts.ts";
import { runService } from "../runtime/run_service.ts";
import { ECHO_AGENT } from "./service.ts";

await runService(ECHO_AGENT, () => ECHO_AGENT, readProcessFacts());
