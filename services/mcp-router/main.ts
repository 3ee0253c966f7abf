/**
 * mcp-router process: `deno run -A services/mcp-router/main.ts`. Reads the environment, serves
 * MCP on `PORT` (default 8080) and `/healthz`, `/readyz`, `/metrics` on the ops port `METRICS_PORT`
 * (default `PORT` + 1000, registered as Consul Meta `metrics_port`, where Consul's check and
 * Prometheus read them), registers in Consul as `mcp-router`, and on SIGTERM/SIGINT goes not ready,
 * deregisters, drains, and finishes open calls and streams within the grace period.
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
import { ConnectionGuard } from "./connection_guard.ts";
import { JwksCache } from "./jwks_cache.ts";
import { randomSessionKey, SessionCodec } from "./session_token.ts";
import { StrategySettings } from "./strategy_settings.ts";
import { onStopSignals } from "../runtime/stop_signals.ts";
import { delay } from "../runtime/delay.ts";

const PROGRAM = "mcp-router";
const TRUSTED_PROXY_REFRESH_MS = 5_000;
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

const metrics = new MetricsRegistry();
const service = createRouterService({
  config: routerConfig,
  directory,
  sessions,
  ended,
  metrics,
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

const connectionsCut = metrics.counter(
  "mcp_router_connections_cut_total",
  "MCP port connections closed by the guard: header_timeout, body_timeout, idle, " +
    "max_connections, malformed.",
);
const limits = routerConfig.limits;
// The MCP port is served by the connection guard, which adds the read timeouts `Deno.serve` lacks
// and calls the router's handler in process (connection_guard.ts).
const guard = new ConnectionGuard({
  handler: service.fetch,
  maxBodyBytes: routerConfig.maxBodyBytes,
  headerTimeoutMs: limits.headerTimeoutMs,
  bodyTimeoutMs: limits.bodyTimeoutMs,
  idleTimeoutMs: limits.connectionIdleMs,
  maxConnections: limits.maxConnections,
  logger,
  onCut: (reason) => connectionsCut.inc({ reason }),
});
let listener: Deno.TcpListener;
try {
  listener = Deno.listen({ hostname: "0.0.0.0", port: config.port, transport: "tcp" });
} catch (error) {
  logger.error("cannot start", { error: (error as Error).message });
  Deno.exit(1);
}
guard.serve(listener);
const port = listener.addr.port;
const opsServer = Deno.serve({
  hostname: "0.0.0.0",
  port: config.metricsPort,
  onListen: () => {},
}, service.ops);
const opsPort = opsServer.addr.port;
const resolving = new AbortController();
resolveTrustedProxies(resolving.signal);

const registrar = new ConsulRegistrar(consul, {
  name: CONSUL_NAME,
  id: config.serviceId,
  address: config.advertiseAddr,
  port,
  tags: ["mcp", "http"],
  meta: { version: VERSION, program: PROGRAM, metrics_port: String(opsPort) },
  check: {
    HTTP: `http://${config.advertiseAddr}:${opsPort}/readyz`,
    Method: "GET",
    ...checkTiming(config),
  },
}, { logger });
registrar.start();
logger.info("serving", { port, opsPort, consul: config.consulUrl, path: "/mcp" });

onStopSignals(logger, shutdown);

async function shutdown(signal: Deno.Signal): Promise<void> {
  logger.info("stopping", { signal, inFlight: service.inFlight });
  service.drain();
  await registrar.deregister();
  // Balancers learn of the deregistration through Consul and health checks; keep serving meanwhile.
  await new Promise((resolve) => setTimeout(resolve, config.drainSeconds * 1000));
  // Listening clients reconnect elsewhere; calls in flight get the grace period to finish.
  await service.endpoint.closeListeners();
  const graceful = guard.shutdown();
  const timer = new Promise((resolve) => setTimeout(resolve, config.graceSeconds * 1000));
  await Promise.race([graceful, timer.then(() => service.close())]);
  await service.close();
  await guard.close();
  await directory.close();
  await strategies.close();
  await ended.close();
  resolving.abort();
  await opsServer.shutdown();
  logger.info("stopped", { signal });
}

/**
 * Keeps the addresses of `ROUTER_TRUSTED_PROXIES` host names (Swarm's `tasks.lb`) current: a
 * replaced HAProxy task has a new address, and until it is known its requests count as one client.
 */
async function resolveTrustedProxies(signal: AbortSignal): Promise<void> {
  const proxies = service.trustedProxies;
  if (proxies.names.length === 0) return;
  let failing = false;
  while (!signal.aborted) {
    const found: string[] = [];
    let complete = true;
    for (const name of proxies.names) {
      try {
        found.push(...await Deno.resolveDns(name, "A", { signal }));
      } catch (error) {
        if (signal.aborted) return;
        // Logged once per outage; the addresses known before are kept meanwhile.
        if (!failing) {
          logger.warn("Cannot resolve a trusted proxy", { name, error: (error as Error).message });
        }
        complete = false;
      }
    }
    failing = !complete;
    if (complete) proxies.setResolved(found);
    await delay(TRUSTED_PROXY_REFRESH_MS, { signal });
  }
}
