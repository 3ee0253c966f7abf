/** Runs `lb sync`'s syncer (real HAProxy kept in step with real Consul) on loopback for tests. */
import { ConsulClient } from "../../services/runtime/consul/client.ts";
import { freePort } from "./consul_dev.ts";
import { LbSyncer } from "../../haproxy/syncer.ts";
import { DEFAULT_LB_SETTINGS } from "../../haproxy/model.ts";
import { type Logger, SILENT_LOGGER } from "../../services/runtime/logger.ts";

/** Options of {@linkcode startLbSyncer}. */
export interface StartLbSyncerOptions {
  /** The main template; default the repository's `templates/haproxy.cfg.hbs`. */
  templatePath?: string;
  /** Reload when the templates change; default true. */
  watchTemplates?: boolean;
  /** Consul ACL token (lb's read-only one when ACLs are on). */
  token?: string;
  /** Default: silent. */
  logger?: Logger;
}

const TEMPLATE = new URL("../../templates/haproxy.cfg.hbs", import.meta.url).pathname;

/**
 * Starts HAProxy on free loopback ports with its config and sockets in `dir`; its settings are
 * `syncer.applied.settings`. Stop it in the test.
 */
export function startLbSyncer(
  consulUrl: string,
  dir: string,
  options: StartLbSyncerOptions = {},
): Promise<LbSyncer> {
  return LbSyncer.start({
    consul: new ConsulClient(consulUrl, { token: options.token }),
    settings: {
      ...DEFAULT_LB_SETTINGS,
      bindAddress: "127.0.0.1",
      mcpPort: freePort(),
      statsPort: freePort(),
      runtimeSocket: `${dir}/admin.sock`,
      minSlots: 4,
      hardStopAfter: "10s",
      // A test's load loop is one client: the front door's per-client limits would refuse it.
      clientMaxConnections: 0,
      clientMaxRequestRate: 0,
      clientMaxConcurrent: 0,
      sourceMaxRequestRate: 0,
    },
    templatePath: options.templatePath ?? TEMPLATE,
    configPath: `${dir}/haproxy.cfg`,
    masterSocket: `${dir}/master.sock`,
    logger: options.logger ?? SILENT_LOGGER,
    watchTemplates: options.watchTemplates,
  });
}
