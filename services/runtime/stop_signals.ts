/** SIGTERM/SIGINT handling shared by every service process. */
import type { Logger } from "./logger.ts";

/**
 * On the first SIGTERM or SIGINT runs `shutdown` and exits 0 (1 if it fails); a second signal
 * exits 1 at once.
 */
export function onStopSignals(
  logger: Logger,
  shutdown: (signal: Deno.Signal) => Promise<void>,
): void {
  let stopping = false;
  const stop = (signal: Deno.Signal) => {
    if (stopping) {
      logger.warn("second signal, exiting at once", { signal });
      Deno.exit(1);
    }
    stopping = true;
    shutdown(signal).then(
      () => Deno.exit(0),
      (error) => {
        logger.error("shutdown failed", { error: (error as Error).message });
        Deno.exit(1);
      },
    );
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
}
