/**
 * The autoscaler: every EVALUATION_INTERVAL, reads each autoscaled Swarm service's policy from its
 * labels and its load from Prometheus, decides HPA-style, and scales through the manager's Docker
 * socket. Serves `/metrics`, `/status` and `/healthz`; registers in Consul (Meta `metrics_port`)
 * so Prometheus scrapes it; writes its status to Consul KV for `./platform autoscale status`.
 *
 *   deno run -A services/autoscaler/main.ts
 */
import { pickAddresses } from "../runtime/config.ts";
import type { ConsulClient } from "../runtime/consul/client.ts";
import { putKv } from "../runtime/consul/kv.ts";
import { consulClientFromSettings, parseConsulSettings } from "../runtime/consul/settings.ts";
import { withNodeAgent } from "../runtime/local_agent.ts";
import { createLogger } from "../runtime/logger.ts";
import { ConsulRegistrar, describeError } from "../runtime/registration.ts";
import { onStopSignals } from "../runtime/stop_signals.ts";
import { bootLogger } from "../runtime/run_service.ts";
import { PLATFORM_VERSION } from "../runtime/version.ts";
import { Autoscaler } from "./autoscaler.ts";
import { readMetric } from "./prometheus_client.ts";
import { type AutoscalerSettings, parseAutoscalerSettings, SettingsError } from "./settings.ts";
import { DockerSwarm } from "./swarm.ts";
import { delay } from "../runtime/delay.ts";

// Like every program: registers with the Consul agent of its own node (CONSUL_NODE) when set.
const env = await withNodeAgent(Deno.env.toObject(), bootLogger("autoscaler", Deno.env.toObject()));
let settings: AutoscalerSettings;
try {
  settings = parseAutoscalerSettings(env, {
    hostname: Deno.hostname(),
    addresses: pickAddresses(Deno.networkInterfaces()),
  });
} catch (error) {
  if (error instanceof SettingsError) {
    console.error(`error: autoscaler: ${error.message}`);
    Deno.exit(error.exitCode);
  }
  throw error;
}
const logger = createLogger({
  level: settings.logLevel,
  fields: { service: "autoscaler", instance: settings.serviceId },
});
// The token as every program takes it: CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE.
let consul: ConsulClient;
try {
  consul = await consulClientFromSettings(
    parseConsulSettings(env, { defaultAddress: settings.consulUrl }).settings,
  );
} catch (error) {
  console.error(`error: autoscaler: ${(error as Error).message}`);
  Deno.exit(1);
}

const autoscaler = new Autoscaler({
  swarm: new DockerSwarm(settings.dockerSocket, { stack: settings.stack || undefined }),
  readMetric: (policy) =>
    readMetric(settings.prometheusUrl, policy, { windowSeconds: settings.metricWindowSeconds }),
  logger,
  now: Date.now,
  dryRun: settings.dryRun,
  intervalSeconds: settings.intervalSeconds,
});

let server;
try {
  server = Deno.serve(
    { port: settings.port, hostname: "0.0.0.0", onListen: () => {} },
    (request) => {
      const path = new URL(request.url).pathname;
      if (request.method !== "GET") return new Response("method not allowed\n", { status: 405 });
      if (path === "/metrics") {
        return new Response(autoscaler.renderMetrics(), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      }
      if (path === "/status") return Response.json(autoscaler.statusDocument());
      if (path === "/healthz") return new Response("ok\n");
      return new Response("not found\n", { status: 404 });
    },
  );
} catch (error) {
  logger.error("cannot start", { error: (error as Error).message });
  Deno.exit(1);
}
const port = server.addr.port;

const registrar = new ConsulRegistrar(consul, {
  name: "platform-autoscaler",
  id: settings.serviceId,
  address: settings.advertiseAddr,
  port,
  // Not tagged `platform`: the MCP routers serve the tools of services tagged so.
  tags: ["autoscaler"],
  meta: { version: PLATFORM_VERSION, program: "autoscaler", metrics_port: String(port) },
  check: {
    HTTP: `http://${settings.advertiseAddr}:${port}/healthz`,
    Method: "GET",
    Interval: "5s",
    Timeout: "3s",
    DeregisterCriticalServiceAfter: "1m",
  },
}, { logger });
registrar.start();
logger.info("started", {
  port,
  prometheus: settings.prometheusUrl,
  stack: settings.stack || "(every stack)",
  intervalSeconds: settings.intervalSeconds,
  dryRun: settings.dryRun,
});

/** Writes the status document to Consul KV; a failure is logged once until it works again. */
let publishFailing = false;
async function publishStatus(): Promise<void> {
  try {
    await putKv(consul, settings.statusKey, {
      value: JSON.stringify(autoscaler.statusDocument()),
      timeoutMs: 3000,
    });
    publishFailing = false;
  } catch (error) {
    if (!publishFailing) {
      logger.warn("cannot write the status to Consul", { error: describeError(error) });
    }
    publishFailing = true;
  }
}

const stopped = new AbortController();
onStopSignals(logger, async (signal) => {
  logger.info("stopping", { signal });
  stopped.abort();
  await registrar.deregister();
  await server.shutdown();
  logger.info("stopped", { signal });
});

while (!stopped.signal.aborted) {
  await autoscaler.evaluate();
  if (stopped.signal.aborted) break;
  await publishStatus();
  await delay(settings.intervalSeconds * 1000, { signal: stopped.signal });
}
