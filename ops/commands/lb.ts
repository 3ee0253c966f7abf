/**
 * `lb render | sync | reload`: HAProxy's config from Consul, and HAProxy kept in step with it. The
 * load balancer itself lives in `haproxy/`; these commands run it through the CLI context like
 * every other command (`--json`, `--timeout`, errors and exit codes from `ops/main.ts`).
 */
import type { Command } from "commander";
import { describeRejected } from "../../services/runtime/consul/health.ts";
import { consulClientFromSettings } from "../../services/runtime/consul/settings.ts";
import { withNodeAgent } from "../../services/runtime/local_agent.ts";
import { createLogger, type LogLevel } from "../../services/runtime/logger.ts";
import { renderHaproxyConfig } from "../../haproxy/config.ts";
import { readConsulSnapshot } from "../../haproxy/consul_snapshot.ts";
import { runLbSync } from "../../haproxy/daemon.ts";
import { buildLbModel, describeRefused } from "../../haproxy/model.ts";
import { type LbConfig, type LbFlags, parseLbConfig } from "../../haproxy/settings.ts";
import { loadHaproxyTemplates } from "../../haproxy/templates.ts";
import type { Env } from "../config.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { OpsError } from "../errors.ts";

const DEFAULT_TEMPLATE = new URL("../../templates/haproxy.cfg.hbs", import.meta.url).pathname;

async function loadConfig(env: Env, flags: LbFlags): Promise<LbConfig> {
  const authFile = env.LB_STATS_AUTH_FILE;
  let statsAuthText: string | null = null;
  if (authFile) {
    try {
      statsAuthText = await Deno.readTextFile(authFile);
    } catch (error) {
      throw new OpsError(
        `Cannot read LB_STATS_AUTH_FILE "${authFile}": ${(error as Error).message}`,
        { code: "LB_STATS_AUTH_UNREADABLE", cause: error },
      );
    }
  }
  return parseLbConfig(env, flags, { defaultTemplate: DEFAULT_TEMPLATE, statsAuthText });
}

/** What `lb render` did. */
export interface LbRenderReport {
  /** The file written, or null when the config went to stdout. */
  out: string | null;
  warnings: string[];
  /** The rendered config (with `--json`, and on stdout without `--out`). */
  config: string;
}

/** `lb render`: renders HAProxy's config from Consul once, to stdout or `--out`. */
export async function lbRender(context: CommandContext, flags: LbFlags): Promise<LbRenderReport> {
  const config = await loadConfig(context.env, flags);
  const templates = await loadHaproxyTemplates(config.templatePath);
  const consul = await consulClientFromSettings(config.consul, {
    timeoutMs: context.config.timeoutSeconds * 1000,
  });
  const { snapshot, rejected } = await readConsulSnapshot(consul, config.settings.routerService);
  const model = buildLbModel(snapshot, config.settings);
  const warnings = [
    ...[...rejected, ...model.rejected].map(describeRejected),
    ...model.refused.map(describeRefused),
  ];
  for (const warning of warnings) context.progress.log(`lb: warning: ${warning}`);
  const text = renderHaproxyConfig(model, templates);
  const report: LbRenderReport = { out: flags.out ?? null, warnings, config: text };
  if (!flags.out) {
    context.result(report, text);
    return report;
  }
  // Written beside the target and renamed, so a reader never sees half a config.
  const temporary = `${flags.out}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(temporary, text);
  await Deno.rename(temporary, flags.out);
  context.progress.log(`lb: wrote "${flags.out}"`);
  if (context.config.json) context.result(report, "");
  return report;
}

/** `lb sync`: starts HAProxy and keeps it in step with Consul until SIGTERM or SIGINT. */
export async function lbSync(context: CommandContext, flags: LbFlags): Promise<void> {
  const logger = createLogger({
    level: (context.env.LOG_LEVEL as LogLevel | undefined) ?? "info",
    fields: { service: "lb" },
    write: (line) => context.progress.log(line),
  });
  // In the stack, HAProxy follows the Consul agent of its own node (CONSUL_NODE).
  const config = await loadConfig(await withNodeAgent(context.env, logger), flags);
  // Listen before HAProxy starts: a signal's default action would orphan it.
  const stop = new Promise<string>((resolve) => {
    for (const name of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
  await runLbSync(config, { logger, stop });
}

/** `lb reload`: asks the running `lb sync` for a validated reload. */
export async function lbReload(
  context: CommandContext,
  flags: LbFlags,
): Promise<{ reloaded: true }> {
  const config = await loadConfig(context.env, flags);
  let response: Response;
  try {
    response = await fetch(`${config.syncUrl}/reload`, {
      method: "POST",
      signal: AbortSignal.timeout(context.config.timeoutSeconds * 1000),
    });
  } catch (error) {
    throw new OpsError(`Cannot reach lb sync at "${config.syncUrl}": ${(error as Error).message}`, {
      code: "LB_UNREACHABLE",
      cause: error,
    });
  }
  const outcome = await response.json() as { reloaded: boolean; error?: string };
  if (!outcome.reloaded) {
    throw new OpsError(`HAProxy kept its config: ${outcome.error}`, { code: "LB_RELOAD_REFUSED" });
  }
  context.result({ reloaded: true }, "reloaded");
  return { reloaded: true };
}

/** Registers the `lb` command group. */
export function registerLb(program: Command, run: CommandRunner): void {
  const lb = program.command("lb").description(
    "HAProxy in front of the MCP routers, fed from Consul",
  );
  lb.command("render")
    .description("render HAProxy's config from Consul once")
    .option("--consul <url>", "Consul HTTP API (env CONSUL_HTTP_ADDR)")
    .option("--template <path>", "main template (env LB_TEMPLATE)")
    .option("--out <file>", "write here instead of stdout")
    .action((flags: LbFlags) => run(async (context) => void await lbRender(context, flags)));
  lb.command("sync")
    .description("start HAProxy and keep it in step with Consul")
    .option("--consul <url>", "Consul HTTP API (env CONSUL_HTTP_ADDR)")
    .option("--template <path>", "main template (env LB_TEMPLATE)")
    .option("--run-dir <dir>", "config and sockets (env LB_RUN_DIR, default /run/lb)")
    .action((flags: LbFlags) => run((context) => lbSync(context, flags)));
  lb.command("reload")
    .description("ask the running lb sync for a validated reload")
    .option("--sync-url <url>", "lb sync's admin URL (env LB_SYNC_URL)")
    .action((flags: LbFlags) => run(async (context) => void await lbReload(context, flags)));
}
