/**
 * The `prometheus` container: renders Prometheus's config from the environment, serves Consul as
 * HTTP service discovery on loopback (Debian's build has no Consul discovery), runs Prometheus and
 * ends with it. SIGTERM/SIGINT are passed on to Prometheus, which flushes its data and exits.
 *
 *   deno run -A prometheus/main.ts
 */
import type { ConsulClient } from "../services/runtime/consul/client.ts";
import {
  consulClientFromSettings,
  parseConsulSettings,
} from "../services/runtime/consul/settings.ts";
import { createLogger } from "../services/runtime/logger.ts";
import { renderPrometheusConfig } from "./config.ts";
import { fetchConsulTargets } from "./consul_sd.ts";
import { parsePrometheusSettings, SettingsError } from "./settings.ts";

const TEMPLATE = new URL("../templates/prometheus.yml.hbs", import.meta.url);

const env = Deno.env.toObject();
let statsAuth: string | undefined;
if (env.LB_STATS_AUTH_FILE?.trim()) {
  try {
    statsAuth = await Deno.readTextFile(env.LB_STATS_AUTH_FILE.trim());
  } catch (error) {
    console.error(
      `error: Cannot read LB_STATS_AUTH_FILE "${env.LB_STATS_AUTH_FILE}": ${
        (error as Error).message
      }`,
    );
    Deno.exit(2);
  }
}
let settings;
try {
  settings = parsePrometheusSettings(env, statsAuth);
} catch (error) {
  if (error instanceof SettingsError) {
    console.error(`error: prometheus: ${error.message}`);
    Deno.exit(error.exitCode);
  }
  throw error;
}
const logger = createLogger({ level: settings.logLevel, fields: { service: "prometheus" } });
// The token as every program takes it (CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE): read-only.
let consul: ConsulClient;
try {
  consul = await consulClientFromSettings(
    parseConsulSettings(env, { defaultAddress: settings.consulUrl }).settings,
  );
} catch (error) {
  console.error(`error: prometheus: ${(error as Error).message}`);
  Deno.exit(2);
}

await Deno.mkdir(settings.runDir, { recursive: true });
let lbAuth;
if (settings.lbAuth) {
  const passwordFile = `${settings.runDir}/lb_stats_password`;
  await Deno.writeTextFile(passwordFile, settings.lbAuth.password, { mode: 0o600 });
  lbAuth = { username: settings.lbAuth.username, passwordFile };
}
const configPath = `${settings.runDir}/prometheus.yml`;
await Deno.writeTextFile(
  configPath,
  renderPrometheusConfig(await Deno.readTextFile(TEMPLATE), {
    sdUrl: `http://127.0.0.1:${settings.sdPort}/v1/targets`,
    lb: settings.lb,
    scrapeIntervalSeconds: settings.scrapeIntervalSeconds,
    selfTarget: `localhost:${settings.port}`,
    lbAuth,
  }),
);

// Prometheus keeps the targets of its last good answer when this one fails.
let sdFailing = false;
const sd = Deno.serve(
  { hostname: "127.0.0.1", port: settings.sdPort, onListen: () => {} },
  async (request) => {
    if (new URL(request.url).pathname !== "/v1/targets") {
      return new Response("not found\n", { status: 404 });
    }
    try {
      const groups = await fetchConsulTargets(consul);
      if (sdFailing) logger.info("Consul reachable again", { consul: settings.consulUrl });
      sdFailing = false;
      return Response.json(groups);
    } catch (error) {
      if (!sdFailing) {
        logger.warn("cannot read Consul's catalog", {
          consul: settings.consulUrl,
          error: (error as Error).message,
        });
      }
      sdFailing = true;
      return new Response(`Cannot read Consul's catalog: ${(error as Error).message}\n`, {
        status: 503,
      });
    }
  },
);

const child = new Deno.Command(settings.binary, {
  args: [
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${settings.dataDir}`,
    `--storage.tsdb.retention.time=${settings.retentionTime}`,
    `--storage.tsdb.retention.size=${settings.retentionSize}`,
    `--web.listen-address=${settings.bindAddress}:${settings.port}`,
    `--log.level=${settings.logLevel}`,
  ],
  stdin: "null",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
logger.info("started", {
  pid: child.pid,
  port: settings.port,
  retention: `${settings.retentionTime}/${settings.retentionSize}`,
  lbAuth: settings.lbAuth !== null,
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, () => {
    logger.info("stopping", { signal });
    try {
      child.kill(signal);
    } catch {
      // It exited in the meantime.
    }
  });
}
const status = await child.status;
await sd.shutdown();
logger.info("stopped", { code: status.code, signal: status.signal });
Deno.exit(status.code);
