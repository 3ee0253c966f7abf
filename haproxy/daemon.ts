/**
 * `lb sync` as a daemon: starts HAProxy through {@linkcode LbSyncer}, serves the admin endpoint
 * (metrics, health, reload on demand) and runs until asked to stop or until HAProxy exits.
 */
import { consulClientFromSettings } from "../services/runtime/consul/settings.ts";
import type { Logger } from "../services/runtime/logger.ts";
import { PlatformError } from "../services/runtime/platform_error.ts";
import { serveLbAdmin } from "./admin.ts";
import type { LbConfig } from "./settings.ts";
import { LbSyncer } from "./syncer.ts";

/** Options of {@linkcode runLbSync}. */
export interface RunLbSyncOptions {
  logger: Logger;
  /** Resolves with the reason to stop (a signal's name): HAProxy then stops gracefully. */
  stop: Promise<string>;
}

/** Runs until `options.stop` resolves (graceful stop) or HAProxy exits (throws). */
export async function runLbSync(config: LbConfig, options: RunLbSyncOptions): Promise<void> {
  const { logger } = options;
  await Deno.mkdir(config.runDir, { recursive: true });
  const syncer = await LbSyncer.start({
    consul: await consulClientFromSettings(config.consul),
    settings: config.settings,
    templatePath: config.templatePath,
    configPath: config.configPath,
    masterSocket: config.masterSocket,
    logger,
    debounceMs: config.debounceMs,
    reloadDebounceMs: config.reloadDebounceMs,
    drainTimeoutMs: config.drainTimeoutMs,
    onHaproxyLine: (line) => logger.info("haproxy", { line }),
  });
  const admin = serveLbAdmin(syncer, {
    hostname: config.metricsAddress,
    port: config.metricsPort,
  });
  const outcome = await Promise.race([
    options.stop.then((reason) => ({ kind: "stop" as const, reason })),
    syncer.haproxyExited.then((status) => ({ kind: "exit" as const, status })),
  ]);
  await admin.shutdown();
  if (outcome.kind === "stop") {
    logger.info("stopping", { signal: outcome.reason });
    await syncer.stop({ graceful: true });
    return;
  }
  await syncer.stop({ graceful: false });
  throw new PlatformError(`HAProxy exited unexpectedly with code ${outcome.status.code}`, {
    code: "HAPROXY_EXITED",
  });
}
