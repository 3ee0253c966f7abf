/**
 * The life of a platform service process: parse the environment, serve gRPC, register in Consul,
 * and on SIGTERM/SIGINT go NOT_SERVING, deregister, drain, finish in-flight calls, exit 0.
 */
import { bindServer, createCapabilityServer } from "./capability_server.ts";
import { ConfigError, type Env, parseServiceConfig, type ServiceConfig } from "./config.ts";
import type { ConsulClient } from "./consul/client.ts";
import { consulClientFromSettings } from "./consul/settings.ts";
import { createLogger, LOG_LEVELS, type Logger } from "./logger.ts";
import { withNodeAgent } from "./local_agent.ts";
import { checkTiming, ConsulRegistrar } from "./registration.ts";
import { createServiceMetrics, serveMetrics } from "./service_metrics.ts";
import type { ServiceDefinition } from "./tool.ts";
import { onStopSignals } from "./stop_signals.ts";
import { delay } from "./delay.ts";

/** What a service's builder gets. */
export interface ServiceContext {
  readonly config: ServiceConfig;
  readonly logger: Logger;
  /** Consul with the service's token. */
  readonly consul: ConsulClient;
  /** Runs `cleanup` after the server has stopped, during shutdown. */
  onShutdown(cleanup: () => Promise<void> | void): void;
}

/** The process facts that `main.ts` reads and passes in. */
export interface ProcessFacts {
  env: Env;
  hostname: string;
  addresses: readonly string[];
}

/** The static facts of a service, known before its tools are built. */
export interface ServiceIdentity {
  program: string;
  defaultPort: number;
}

/** Builds the service's definition once the configuration is known. */
export type ServiceBuilder = (
  context: ServiceContext,
) => ServiceDefinition | Promise<ServiceDefinition>;

/** Runs a service until a signal stops it; never returns normally. */
export async function runService(
  identity: ServiceIdentity,
  build: ServiceBuilder,
  facts: ProcessFacts,
): Promise<never> {
  let config: ServiceConfig;
  try {
    const env = await withNodeAgent(facts.env, bootLogger(identity.program, facts.env));
    config = parseServiceConfig(env, { ...identity, ...facts });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`error: ${identity.program}: ${error.message}`);
      Deno.exit(error.exitCode);
    }
    throw error;
  }

  const logger = createLogger({
    level: config.logLevel,
    fields: { service: identity.program, instance: config.serviceId },
  });
  let consul: ConsulClient;
  try {
    consul = await consulClientFromSettings(config.consul);
  } catch (error) {
    console.error(`error: ${identity.program}: ${(error as Error).message}`);
    Deno.exit(1);
  }
  const cleanups: (() => Promise<void> | void)[] = [];
  const definition = await build({
    config,
    logger,
    consul,
    onShutdown: (fn) => cleanups.push(fn),
  });
  const metrics = createServiceMetrics(definition.tools.map((tool) => tool.name), {
    inFlight: () => capability.inFlight,
  });
  const capability = createCapabilityServer(definition, {
    instanceId: config.serviceId,
    logger,
    onCallEnd: metrics.record,
    maxConcurrentStreams: config.grpcMaxConcurrentStreams,
    maxDeadlineMs: config.grpcMaxDeadlineMs,
  });
  let port: number;
  let metricsPort: number;
  try {
    port = await bindServer(capability.server, config.port);
    metricsPort = serveMetrics(metrics.render, { port: config.metricsPort, logger }).port;
  } catch (error) {
    logger.error("cannot start", { error: (error as Error).message });
    Deno.exit(1);
  }

  const registrar = new ConsulRegistrar(consul, {
    name: definition.name,
    id: config.serviceId,
    address: config.advertiseAddr,
    port,
    tags: ["platform", definition.kind],
    meta: {
      version: definition.version,
      kind: definition.kind,
      tools: definition.tools.map((tool) => tool.name).join(","),
      program: identity.program,
      // Prometheus scrapes `/metrics` on this port of every instance that registers it.
      metrics_port: String(metricsPort),
      // `lb sync` gives a service with `lb_port` its own HAProxy frontend.
      ...(config.expose
        ? { lb_port: String(config.expose.port), lb_mode: config.expose.mode }
        : {}),
    },
    check: {
      GRPC: `${config.advertiseAddr}:${port}`,
      GRPCUseTLS: false,
      ...checkTiming(config),
    },
  }, { logger });
  registrar.start();
  logger.info("serving", {
    port,
    metricsPort,
    consul: config.consulUrl,
    tools: definition.tools.length,
  });

  onStopSignals(logger, shutdown);

  async function shutdown(signal: Deno.Signal): Promise<void> {
    logger.info("stopping", { signal, inFlight: capability.inFlight });
    capability.setServing(false);
    metrics.setDraining(true);
    await registrar.deregister();
    // Balancers learn of the deregistration through Consul; keep serving what they still send.
    await delay(config.drainSeconds * 1000);
    // No new connections; no GOAWAY on the open ones (it can crash a grpc-js client on Deno,
    // denoland/deno#36788): clients learned from Consul to go elsewhere, and the sockets close below.
    capability.server.drain();
    const idle = await capability.idle(config.graceSeconds * 1000);
    if (!idle) {
      logger.warn("grace period over, cancelling calls", { inFlight: capability.inFlight });
    }
    await capability.server.close();
    for (const cleanup of cleanups) await cleanup();
    logger.info("stopped", { signal });
  }

  // Serve until a signal ends the process.
  return await new Promise<never>(() => {});
}

/** The logger of the first steps, before the configuration (and its log level) is known. */
export function bootLogger(
  program: string,
  env: Readonly<Record<string, string | undefined>>,
): Logger {
  const level = LOG_LEVELS.find((known) => known === env.LOG_LEVEL) ?? "info";
  return createLogger({ level, fields: { service: program } });
}
