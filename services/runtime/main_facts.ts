/** Reads the process facts a service needs (environment, host name, addresses); for main.ts files. */
import { pickAddresses } from "./config.ts";
import type { ProcessFacts } from "./run_service.ts";

/** The facts of this process. */
export function readProcessFacts(): ProcessFacts {
  return {
    env: Deno.env.toObject(),
    hostname: Deno.hostname(),
    addresses: pickAddresses(Deno.networkInterfaces()),
  };
}
