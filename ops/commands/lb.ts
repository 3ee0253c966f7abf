/** `lb render | sync | reload`: HAProxy's config from Consul, and HAProxy kept in step with it. */

import { Command } from "commander";
import { withNodeAgent } from "../../services/runtime/local_agent.ts";
import { describeRejected } from "../../services/runtime/consul/health.ts";
import { consulClientFromSettings } from "../../services/runtime/consul/settings.ts";
import { createLogger } from "../../services/runtime/logger.ts";
import { serveLbAdmin } from "../adapters/haproxy_admin.ts";
import { readConsulSnapshot } from "../adapters/haproxy_consul.ts";
import { LbSyncer } from "../adapters/haproxy_syncer.ts";
import { loadHaproxyTemplates } from "../adapters/haproxy_templates.ts";
import { renderHaproxyConfig } from "../render/haproxy_config.ts";
import { buildLbModel, describeRefused } from "../render/haproxy_model.ts";
import { type LbConfig, type LbFlags, parseLbConfig } from "../render/haproxy_settings.ts";

/** The process around the `lb` commands; tests replace it. */
export interface LbIo {
  env: Record<string, string | undefined>;
  stdout(text: string): void;
  stderr(text: string): void;
}

const DEFAULT_TEMPLATE = new URL("../../templates/haproxy.cfg.hbs", import.meta.url).pathname;
const encoder = new TextEncoder();

function defaultIo(): LbIo {
  return {
    env: Deno.env.toObject(),
    stdout: (text) => Deno.stdout.writeSync(encoder.encode(text)),
    stderr: (text) => Deno.stderr.writeSync(encoder.encode(text)),
  };
}

async function loadConfig(io: LbIo, flags: LbFlags): Promise<LbConfig> {
  const authFile = io.env.LB_STATS_AUTH_FILE;
  let statsAuthText: string | null = null;
  if (authFile) {
    try {
      statsAuthText = await Deno.readTextFile(authFile);
    } catch (error) {
      throw new Error(`Cannot read LB_STATS_AUTH_FILE "${authFile}": ${(error as Error).message}`);
    }
  }
  return parseLbConfig(io.env, flags, { defaultTemplate: DEFAULT_TEMPLATE, statsAuthText });
}

async function render(io: LbIo, flags: LbFlags): Promise<void> {
  const config = await loadConfig(io, flags);
  const templates = await loadHaproxyTemplates(config.templatePath);
  const consul = await consulClientFromSettings(config.consul);
  const { snapshot, rejected } = await readConsulSnapshot(consul, config.settings.routerService);
  const model = buildLbModel(snapshot, config.settings);
  for (const entry of [...rejected, ...model.rejected]) {
    io.stderr(`lb: warning: ${describeRejected(entry)}\n`);
  }
  for (const refused of model.refused) io.stderr(`lb: warning: ${describeRefused(refused)}\n`);
  const text = renderHaproxyConfig(model, templates);
  if (!flags.out) {
    io.stdout(text);
    return;
  }
  // Written beside the target and renamed, so a reader never sees half a config.
  const temporary = `${flags.out}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(temporary, text);
  await Deno.rename(temporary, flags.out);
  io.stderr(`lb: wrote "${flags.out}"\n`);
}

async function sync(io: LbIo, flags: LbFlags): Promise<void> {
  const logger = createLogger({
    level: (io.env.LOG_LEVEL as "debug" | "info" | "warn" | "error" | undefined) ?? "info",
    fields: { service: "lb" },
    write: (line) => io.stderr(`${line}\n`),
  });
  // In the stack, HAProxy follows the Consul agent of its own node (CONSUL_NODE).
  const config = await loadConfig({ ...io, env: await withNodeAgent(io.env, logger) }, flags);
  await Deno.mkdir(config.runDir, { recursive: true });
  // Listen before HAProxy starts: a signal's default action would orphan it.
  const stopSignal = new Promise<string>((resolve) => {
    for (const name of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
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
    stopSignal.then((name) => ({ kind: "signal" as const, name })),
    syncer.haproxyExited.then((status) => ({ kind: "exit" as const, status })),
  ]);
  await admin.shutdown();
  if (outcome.kind === "signal") {
    logger.info("stopping", { signal: outcome.name });
    await syncer.stop({ graceful: true });
    return;
  }
  await syncer.stop({ graceful: false });
  throw new Error(`HAProxy exited unexpectedly with code ${outcome.status.code}`);
}

async function reload(io: LbIo, flags: LbFlags): Promise<void> {
  const config = await loadConfig(io, flags);
  let response: Response;
  try {
    response = await fetch(`${config.syncUrl}/reload`, { method: "POST" });
  } catch (error) {
    throw new Error(
      `Cannot reach lb sync at "${config.syncUrl}": ${(error as Error).message}`,
      { cause: error },
    );
  }
  const outcome = await response.json() as { reloaded: boolean; error?: string };
  if (!outcome.reloaded) throw new Error(`HAProxy kept its config: ${outcome.error}`);
  io.stdout("reloaded\n");
}

/** The `lb` command group. */
export function lbCommand(io: LbIo = defaultIo()): Command {
  const lb = new Command("lb").description("HAProxy in front of the MCP routers, fed from Consul");
  lb.command("render")
    .description("render HAProxy's config from Consul once")
    .option("--consul <url>", "Consul HTTP API (env CONSUL_HTTP_ADDR)")
    .option("--template <path>", "main template (env LB_TEMPLATE)")
    .option("--out <file>", "write here instead of stdout")
    .action((flags: LbFlags) => render(io, flags));
  lb.command("sync")
    .description("start HAProxy and keep it in step with Consul")
    .option("--consul <url>", "Consul HTTP API (env CONSUL_HTTP_ADDR)")
    .option("--template <path>", "main template (env LB_TEMPLATE)")
    .option("--run-dir <dir>", "config and sockets (env LB_RUN_DIR, default /run/lb)")
    .action((flags: LbFlags) => sync(io, flags));
  lb.command("reload")
    .description("ask the running lb sync for a validated reload")
    .option("--sync-url <url>", "lb sync's admin URL (env LB_SYNC_URL)")
    .action((flags: LbFlags) => reload(io, flags));
  return lb;
}
