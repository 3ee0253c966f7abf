/**
 * conformance-server process: `deno run -A services/conformance-server/main.ts`.
 * `CONFORMANCE_WATCH_INTERVAL_MS` (default 3000; 0 never) sets how often `test://watched-resource`
 * changes; `CONFORMANCE_SERVICE_NAME` (default `tool-conformance`) the Consul name, so tests can run
 * a second service that claims the same names.
 */
import { readProcessFacts } from "../runtime/main_facts.ts";
import { runService } from "../runtime/run_service.ts";
import { conformanceServer } from "./service.ts";

const facts = readProcessFacts();
const raw = facts.env.CONFORMANCE_WATCH_INTERVAL_MS ?? "3000";
const watchIntervalMs = Number(raw);
if (!/^\d+$/.test(raw) || !Number.isSafeInteger(watchIntervalMs)) {
  console.error(
    `error: conformance-server: CONFORMANCE_WATCH_INTERVAL_MS must be a whole number of ms, got "${raw}"`,
  );
  Deno.exit(2);
}
const definition = {
  ...conformanceServer({ watchIntervalMs }),
  name: facts.env.CONFORMANCE_SERVICE_NAME || "tool-conformance",
};
await runService(definition, () => definition, facts);
