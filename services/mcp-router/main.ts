/**
 * mcp-router process: `deno run -A services/mcp-router/main.ts`. Reads the environment, serves
 * MCP on `PORT` (default 8080), registers in Consul as `mcp-router`, and on SIGTERM/SIGINT goes
 * not ready, deregisters, drains, and finishes open calls and streams within the grace period.
 */
import { ConfigError, parseServiceConfig, type ServiceConfig } from "../runtime/config.ts";
import type { ConsulClient } from "../runtime/consul/client.ts";
import { consulClientFromSettings } from "../runtime/consul/settings.ts";
import { createLogger } from "../runtime/logger.ts";
import { withNodeAgent } from "../runtime/local_agent.ts";
import { readProcessFacts } from "../runtime/main_facts.ts";
import { bootLogger } from "../runtime/run_service.ts";
import { checkTiming, ConsulRegistrar } from "../runtime/registration.ts";
import { BackendDirectory } from "./backend_directory.ts";
import { parseRouterConfig, type RouterConfig } from "./config.ts";
import { ConsulEndedSessions, endedSessionsWriter } from "./consul_ended_sessions.ts";
import { MetricsRegistry } from "../runtime/metrics.ts";
import { createRouterService } from "./service.ts";
import { JwksCache } from "./jwks_cache.ts";
import { randomSessionKey, SessionCodec } from "./session_token.ts";
import { StrategySettings } from "./strategy_settings.ts";
import { onStopSignals } from "../runtime/stop_signals.ts";

const PROGRAM = "mcp-router";
const CONSUL_NAME = "mcp-router";
const VERSION = "1.0.0";

const processFacts = readProcessFacts();
const facts = {
  ...processFacts,
  env: await withNodeAgent(processFacts.env, bootLogger(PROGRAM, processFacts.env)),
};
let config: ServiceConfig;
let routerConfig: RouterConfig;
try {
  config = parseServiceConfig(facts.env, { program: PROGRAM, defaultPort: 8080, ...facts });
  routerConfig = await parseRouterConfig(facts.env, {
    readTextFile: (path) => Deno.readTextFileSync(path),
  });
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`error: ${PROGRAM}: ${error.message}`);
    Deno.exit(error.exitCode);
  }
  throw error;
}

let consul: ConsulClient;
try {
  consul = await consulClientFromSettings(config.consul);
} catch (error) {
  console.error(`error: ${PROGRAM}: ${(error as Error).message}`);
  Deno.exit(1);
}

const logger = createLogger({
  level: config.logLevel,
  fields: { service: PROGRAM, instance: config.serviceId },
});
let sessionKey = routerConfig.sessionKey;
if (sessionKey === undefined) {
  sessionKey = randomSessionKey();
  logger.warn(
    "No ROUTER_SESSION_KEY or ROUTER_SESSION_KEY_FILE: made a key, so this router's sessions are bound to it",
  );
}
const sessions = await SessionCodec.create(sessionKey, {
  previousKeys: [...routerConfig.previousSessionKeys],
  maxAgeSeconds: routerConfig.sessionMaxAgeSeconds,
});
const strategies = new StrategySettings({
  consul,
  fromEnv: routerConfig.strategies,
  logger,
});
strategies.start();
const directory = new BackendDirectory({
  consul,
  logger,
  strategyFor: (service) => strategies.strategyFor(service),
});
strategies.onChange((service, strategy) => directory.setStrategy(service, strategy));
directory.start();
directory.ready().then(
  (catalog) => logger.info("Catalog loaded", { tools: catalog.tools.length }),
  (error) => logger.warn("Catalog not loaded", { error: (error as Error).message }),
);

const ended = new ConsulEndedSessions({
  consul,
  writer: endedSessionsWriter(config.serviceId),
  maxAgeSeconds: routerConfig.sessionMaxAgeSeconds,
  capacity: routerConfig.endedSessionsMax,
  perClient: routerConfig.sessionDeletes,
  logger,
});
ended.start();

const service = createRouterService({
  config: routerConfig,
  directory,
  sessions,
  ended,
  metrics: new MetricsRegistry(),
  logger,
  serverInfo: { name: PROGRAM, version: VERSION },
  ...(routerConfig.oauth
    ? { accessTokenKeys: new JwksCache(routerConfig.oauth.jwksUrl, { logger }).getKey }
    : {}),
});
if (!routerConfig.authRequired) {
  logger.warn(
    "ROUTER_AUTH=none: MCP is served to anyone who reaches this port, without credentials",
  );
}

const server = Deno.serve({
  hostname: "0.0.0.0",
  port: config.port,
  onListen: () => {},
}, service.fetch);
const port = server.addr.port;

const registrar = new ConsulRegistrar(consul, {
  name: CONSUL_NAME,
  id: config.serviceId,
  address: config.advertiseAddr,
  port,
  tags: ["mcp", "http"],
  meta: { version: VERSION, program: PROGRAM },
  check: {
    HTTP: `http://${config.advertiseAddr}:${port}/readyz`,
    Method: "GET",
    ...checkTiming(config),
  },
}, { logger });
registrar.start();
logger.info("serving", { port, consul: config.consulUrl, path: "/mcp" });

onStopSignals(logger, shutdown);

async function shutdown(signal: Deno.Signal): Promise<void> {
  logger.info("stopping", { signal, inFlight: service.inFlight });
  service.drain();
  await registrar.deregister();
  // Balancers learn of the deregistration through Consul and health checks; keep serving meanwhile.
  await new Promise((resolve) => setTimeout(resolve, config.drainSeconds * 1000));
  // Listening clients reconnect elsewhere; calls in flight get the grace period to finish.
  await service.endpoint.closeListeners();
  const graceful = server.shutdown();
  const timer = new Promise((resolve) => setTimeout(resolve, config.graceSeconds * 1000));
  await Promise.race([graceful, timer.then(() => service.close())]);
  await service.close();
  await directory.close();
  await strategies.close();
  await ended.close();
  logger.info("stopped", { signal });
}
