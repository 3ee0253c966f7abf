/**
 * Keeps a supervised HAProxy in step with Consul: server changes through the runtime API at once
 * (removals) or after a short debounce (additions), anything else by a validated reload.
 */

import { type ConsulClient, consulPath } from "../services/runtime/consul/client.ts";
import { describeRejected } from "../services/runtime/consul/health.ts";
import { ConsulWatch } from "../services/runtime/consul/watch.ts";
import type { Logger } from "../services/runtime/logger.ts";
import { drainingServers, planLbSync } from "./sync_plan.ts";
import { type HaproxyTemplates, renderHaproxyConfig } from "./config.ts";
import { emptyLbCounters, type LbCounters } from "./metrics.ts";
import { exposableServices } from "./consul_snapshot.ts";
import {
  buildLbModel,
  type ConsulSnapshot,
  describeRefused,
  type LbModel,
  type LbSettings,
  type RejectedEntry,
  releaseDrained,
} from "./model.ts";
import { HaproxyProcess, validateHaproxyConfig } from "./process.ts";
import { runtimeCommands, showServers } from "./runtime_api.ts";
import { loadHaproxyTemplates } from "./templates.ts";

/** Options of {@linkcode LbSyncer.start}. */
export interface LbSyncerOptions {
  /** The Consul agent and lb's (read-only) token. */
  consul: ConsulClient;
  settings: LbSettings;
  templatePath: string;
  /** Where the config HAProxy runs lives; the master re-reads it on reload. */
  configPath: string;
  masterSocket: string;
  logger: Logger;
  /** Additions wait this long for more changes; default 20 ms. */
  debounceMs?: number;
  /** Structural changes wait this long for more changes; default 200 ms. */
  reloadDebounceMs?: number;
  /** A draining server leaves after its sessions end or after this long; default 5 min. */
  drainTimeoutMs?: number;
  /** Reload when the template files change; default true. */
  watchTemplates?: boolean;
  haproxyBinary?: string;
  /** HAProxy's stderr lines; default: logged at debug level. */
  onHaproxyLine?: (line: string) => void;
  /** The clock; default `Date.now`. */
  now?: () => number;
}

/** Outcome of a reload attempt. */
export interface ReloadOutcome {
  readonly reloaded: boolean;
  /** Why HAProxy kept its config; absent after a reload. */
  readonly error?: string;
}

/** The running sync loop with its HAProxy. */
export class LbSyncer {
  /** What `lb sync` counted so far. */
  readonly counters: LbCounters = emptyLbCounters();
  readonly #options: LbSyncerOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #routers: ConsulWatch<unknown[]>;
  readonly #catalog: ConsulWatch<{ names: string[]; rejected: readonly RejectedEntry[] }>;
  readonly #serviceWatches = new Map<string, ConsulWatch<unknown[]>>();
  /** Rejected entries already logged, so each is logged once while it stays in Consul. */
  #reportedRejections = new Set<string>();
  #templates: HaproxyTemplates;
  #applied: LbModel;
  #configText: string;
  #haproxy: HaproxyProcess | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerDue = Infinity;
  #changedAt: number | null = null;
  #drainStarted = new Map<string, number>();
  #drainTimer: ReturnType<typeof setInterval> | undefined;
  #templateWatcher: Deno.FsWatcher | null = null;
  #refused = "[]";
  /** HAProxy runs the model in `#applied`: until then, Consul changes wait (see `#begin`). */
  #running = false;
  #closed = false;

  private constructor(options: LbSyncerOptions, templates: HaproxyTemplates) {
    this.#options = options;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#templates = templates;
    this.#routers = new ConsulWatch(
      consulPath("/v1/health/service", options.settings.routerService),
      { consul: options.consul, parse: healthList, minIntervalMs: 1, logger: options.logger },
    );
    this.#catalog = new ConsulWatch("/v1/catalog/services", {
      consul: options.consul,
      parse: (body) => exposableServices(body, options.settings.routerService),
      minIntervalMs: 1,
      logger: options.logger,
    });
    this.#applied = buildLbModel({ routers: [], services: {} }, options.settings);
    this.#configText = "";
  }

  /**
   * Reads Consul once, renders, validates and writes the config, starts HAProxy on it, then
   * follows Consul. Throws when any of that fails, with nothing left running.
   */
  static async start(options: LbSyncerOptions): Promise<LbSyncer> {
    const templates = await loadHaproxyTemplates(options.templatePath);
    const syncer = new LbSyncer(options, templates);
    try {
      await syncer.#begin();
    } catch (error) {
      await syncer.stop({ graceful: false });
      throw error;
    }
    return syncer;
  }

  /** The model HAProxy runs now. */
  get applied(): LbModel {
    return this.#applied;
  }

  /** The config text HAProxy runs now. */
  get configText(): string {
    return this.#configText;
  }

  /** Resolves when HAProxy exits; `lb sync` ends with it unless it was stopped. */
  get haproxyExited(): Promise<Deno.CommandStatus> {
    return this.#haproxy!.exited;
  }

  async #begin(): Promise<void> {
    const consulUrl = this.#options.consul.address;
    this.#routers.start();
    this.#catalog.start();
    try {
      await this.#routers.ready(10_000);
      await this.#catalog.ready(10_000);
    } catch (error) {
      throw new Error(`Cannot follow Consul at "${consulUrl}": ${reason(error)}`, { cause: error });
    }
    await this.#syncServiceWatches();
    const model = buildLbModel(this.#snapshot(), this.#options.settings);
    this.#warnRefused(model);
    this.#reportRejected(model);
    const text = this.#render(model, this.#templates);
    const check = await this.#validate(text);
    if (!check.ok) throw new Error(`HAProxy refused the rendered config: ${check.output}`);
    await Deno.writeTextFile(this.#options.configPath, text);
    this.#haproxy = await HaproxyProcess.start(this.#options.configPath, {
      masterSocket: this.#options.masterSocket,
      binary: this.#options.haproxyBinary,
      onLine: this.#options.onHaproxyLine ??
        ((line) => this.#logger.debug("haproxy", { line })),
    });
    this.#applied = model;
    this.#configText = text;
    this.#running = true;
    // A service watch may have changed while HAProxy started (its handlers are already set):
    // compare once more against what HAProxy really runs.
    this.#consulChanged();
    this.#routers.onChange(() => this.#consulChanged());
    this.#catalog.onChange(() => {
      this.#syncServiceWatches().then(() => this.#consulChanged());
    });
    if (this.#options.watchTemplates !== false) this.#watchTemplates();
    this.#drainTimer = setInterval(() => this.#enqueue(() => this.#checkDrains()), 250);
    this.#logger.info("lb sync started", {
      routers: model.mcp.slots.filter((slot) => slot.instance).length,
      exposed: model.exposed.map((backend) => backend.service),
    });
  }

  #snapshot(): ConsulSnapshot {
    const services: Record<string, unknown[]> = {};
    for (const [name, watch] of this.#serviceWatches) services[name] = watch.value ?? [];
    return { routers: this.#routers.value ?? [], services };
  }

  /** Follows the health of every platform service but the routers, for Meta `lb_port`. */
  async #syncServiceWatches(): Promise<void> {
    const wanted = this.#catalog.value?.names ?? [];
    for (const [name, watch] of this.#serviceWatches) {
      if (!wanted.includes(name)) {
        this.#serviceWatches.delete(name);
        await watch.close();
      }
    }
    const fresh: ConsulWatch<unknown[]>[] = [];
    for (const name of wanted) {
      if (this.#serviceWatches.has(name)) continue;
      const watch = new ConsulWatch<unknown[]>(consulPath("/v1/health/service", name), {
        consul: this.#options.consul,
        parse: healthList,
        minIntervalMs: 1,
        logger: this.#logger,
      });
      this.#serviceWatches.set(name, watch);
      watch.start();
      fresh.push(watch);
    }
    await Promise.all(fresh.map((watch) => watch.ready(10_000).catch(() => undefined)));
    for (const watch of fresh) watch.onChange(() => this.#consulChanged());
  }

  #consulChanged(): void {
    // Before HAProxy runs, a change planned against the empty model would move instances between
    // slots behind the back of the config HAProxy is starting on.
    if (this.#closed || !this.#running) return;
    this.counters.consulUpdates++;
    this.#changedAt ??= this.#now();
    const next = buildLbModel(this.#snapshot(), this.#options.settings, {
      previous: this.#applied,
    });
    this.#warnRefused(next);
    this.#reportRejected(next);
    const plan = planLbSync(this.#applied, next);
    if (plan.kind === "none") return;
    const delay = plan.kind === "reload"
      ? this.#options.reloadDebounceMs ?? 200
      : plan.urgent
      ? 0
      : this.#options.debounceMs ?? 20;
    this.#schedule(delay);
  }

  /** Logs the services refused a frontend port, once each time that list changes. */
  #warnRefused(model: LbModel): void {
    const refused = JSON.stringify(model.refused);
    if (refused === this.#refused) return;
    this.#refused = refused;
    for (const entry of model.refused) {
      this.#logger.warn(describeRefused(entry), { ...entry });
    }
  }

  /**
   * Logs each Consul entry that failed validation once while it stays, and counts it: the model
   * left it out, so HAProxy never sees it.
   */
  #reportRejected(model: LbModel): void {
    const all = [...(this.#catalog.value?.rejected ?? []), ...model.rejected];
    const current = new Set<string>();
    for (const entry of all) {
      const key = `${entry.service}\u0000${entry.id}\u0000${entry.reason}`;
      current.add(key);
      if (this.#reportedRejections.has(key)) continue;
      this.counters.rejectedEntries++;
      this.#logger.warn(describeRejected(entry), { ...entry });
    }
    this.#reportedRejections = current;
    this.counters.rejectedEntriesNow = current.size;
  }

  #schedule(delayMs: number): void {
    const due = this.#now() + delayMs;
    if (this.#timer !== undefined && this.#timerDue <= due) return;
    clearTimeout(this.#timer);
    this.#timerDue = due;
    const fire = () => {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      this.#enqueue(() => this.#converge());
    };
    if (delayMs <= 0) {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      this.#enqueue(() => this.#converge());
    } else {
      this.#timer = setTimeout(fire, delayMs);
    }
  }

  #enqueue(work: () => Promise<unknown>): Promise<unknown> {
    const run = this.#queue.then(() => this.#closed ? undefined : work());
    this.#queue = run.catch((error) => this.#logger.error("lb sync step failed", { error }));
    return run;
  }

  /** Brings HAProxy to the latest Consul state. */
  async #converge(): Promise<void> {
    const next = buildLbModel(this.#snapshot(), this.#options.settings, {
      previous: this.#applied,
    });
    await this.#apply(next, "consul");
  }

  async #apply(next: LbModel, cause: string): Promise<void> {
    const plan = planLbSync(this.#applied, next);
    const changedAt = this.#changedAt;
    this.#changedAt = null;
    if (plan.kind === "none") return;
    if (plan.kind === "runtime") {
      try {
        await runtimeCommands(this.#options.settings.runtimeSocket, plan.commands);
        this.counters.runtimeUpdates += plan.commands.length;
        this.#applied = next;
        this.#configText = this.#safeRender(next) ?? this.#configText;
        this.#converged(changedAt);
        this.#logger.info("haproxy updated at runtime", { cause, commands: plan.commands });
        return;
      } catch (error) {
        this.counters.runtimeFailures++;
        this.#logger.warn("runtime update failed, reloading instead", { error });
      }
    } else {
      this.#logger.info("structural change, reloading", { cause, reasons: plan.reasons });
    }
    const outcome = await this.#reload(next, this.#templates);
    if (outcome.reloaded) this.#converged(changedAt);
  }

  #converged(changedAt: number | null): void {
    const now = this.#now();
    this.counters.lastConvergenceTimestamp = now / 1000;
    if (changedAt !== null) this.counters.lastConvergenceSeconds = (now - changedAt) / 1000;
  }

  #render(model: LbModel, templates: HaproxyTemplates): string {
    try {
      const text = renderHaproxyConfig(model, templates);
      this.counters.renders++;
      return text;
    } catch (error) {
      this.counters.renderFailures++;
      throw error;
    }
  }

  #safeRender(model: LbModel): string | null {
    try {
      return this.#render(model, this.#templates);
    } catch {
      return null;
    }
  }

  async #validate(text: string): Promise<{ ok: boolean; output: string }> {
    const candidate = `${this.#options.configPath}.next`;
    await Deno.writeTextFile(candidate, text);
    const result = await validateHaproxyConfig(candidate, { binary: this.#options.haproxyBinary });
    if (!result.ok) this.counters.failedValidations++;
    return result;
  }

  /** Renders `model` with `templates`, validates, swaps the file in and reloads; never throws. */
  async #reload(model: LbModel, templates: HaproxyTemplates): Promise<ReloadOutcome> {
    let text: string;
    try {
      text = this.#render(model, templates);
    } catch (error) {
      this.#logger.error("render failed; HAProxy keeps its config", { error });
      return { reloaded: false, error: reason(error) };
    }
    const check = await this.#validate(text);
    if (!check.ok) {
      const error = `haproxy -c refused the new config: ${lastAlert(check.output)}`;
      this.#logger.error("validation failed; HAProxy keeps its config", { error });
      return { reloaded: false, error };
    }
    const { configPath } = this.#options;
    await Deno.rename(`${configPath}.next`, configPath);
    try {
      await this.#haproxy!.reload();
    } catch (error) {
      this.counters.reloadFailures++;
      // The master re-reads this file on the next reload or restart: put the good one back.
      await Deno.writeTextFile(configPath, this.#configText);
      this.#logger.error("reload failed; HAProxy keeps its config", { error });
      return { reloaded: false, error: reason(error) };
    }
    this.counters.reloads++;
    this.#applied = model;
    this.#configText = text;
    this.#templates = templates;
    this.#logger.info("haproxy reloaded", { reloads: this.counters.reloads });
    return { reloaded: true };
  }

  /**
   * A validated reload on demand: re-reads the templates, renders the current state, reloads.
   * Resolves with the outcome; the old config keeps serving when anything fails.
   */
  reload(): Promise<ReloadOutcome> {
    return this.#enqueue(async () => {
      let templates: HaproxyTemplates;
      try {
        templates = await loadHaproxyTemplates(this.#options.templatePath);
      } catch (error) {
        return { reloaded: false, error: reason(error) };
      }
      const next = buildLbModel(this.#snapshot(), this.#options.settings, {
        previous: this.#applied,
      });
      return await this.#reload(next, templates);
    }) as Promise<ReloadOutcome>;
  }

  #watchTemplates(): void {
    const path = this.#options.templatePath;
    const slash = path.lastIndexOf("/");
    const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
    try {
      this.#templateWatcher = Deno.watchFs(dir, { recursive: true });
    } catch (error) {
      this.#logger.warn("cannot watch the templates; use lb reload after changing them", { error });
      return;
    }
    const watcher = this.#templateWatcher;
    let timer: ReturnType<typeof setTimeout> | undefined;
    (async () => {
      for await (const event of watcher) {
        if (!event.paths.some((changed) => changed.endsWith(".hbs"))) continue;
        clearTimeout(timer);
        timer = setTimeout(() => this.#templatesChanged(), 100);
      }
    })().catch(() => {});
  }

  async #templatesChanged(): Promise<void> {
    if (this.#closed) return;
    let templates: HaproxyTemplates;
    try {
      templates = await loadHaproxyTemplates(this.#options.templatePath);
    } catch (error) {
      this.#logger.error("cannot read the changed templates", { error });
      return;
    }
    await this.#enqueue(async () => {
      let text: string;
      try {
        text = this.#render(this.#applied, templates);
      } catch (error) {
        this.#logger.error("the changed template does not render; HAProxy keeps its config", {
          error,
        });
        return;
      }
      if (text === this.#configText) return;
      this.#logger.info("template changed, reloading");
      await this.#reload(this.#applied, templates);
    });
  }

  /** Frees the slots of draining servers once their sessions ended or their time ran out. */
  async #checkDrains(): Promise<void> {
    const draining = drainingServers(this.#applied);
    if (draining.size === 0) {
      this.#drainStarted.clear();
      return;
    }
    const now = this.#now();
    const timeout = this.#options.drainTimeoutMs ?? 300_000;
    let rows;
    try {
      rows = await showServers(this.#options.settings.runtimeSocket);
    } catch (error) {
      this.#logger.warn("cannot read server sessions", { error });
      return;
    }
    const sessions = new Map(rows.map((row) => [`${row.pxname}/${row.svname}`, Number(row.scur)]));
    const done = new Set<string>();
    for (const [server, id] of draining) {
      const started = this.#drainStarted.get(id) ?? now;
      this.#drainStarted.set(id, started);
      if ((sessions.get(server) ?? 0) === 0 || now - started >= timeout) done.add(id);
    }
    if (done.size === 0) return;
    for (const id of done) this.#drainStarted.delete(id);
    await this.#apply(releaseDrained(this.#applied, done), "drained");
  }

  /** Stops following Consul and stops HAProxy (gracefully unless told otherwise). */
  async stop(options: { graceful?: boolean } = {}): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#drainTimer);
    try {
      this.#templateWatcher?.close();
    } catch {
      // Already closed.
    }
    await Promise.all([
      this.#routers.close(),
      this.#catalog.close(),
      ...[...this.#serviceWatches.values()].map((watch) => watch.close()),
    ]);
    await this.#queue;
    await this.#haproxy?.stop({ graceful: options.graceful ?? true });
  }
}

function healthList(body: unknown): unknown[] {
  if (!Array.isArray(body)) throw new TypeError("Consul health answer is not an array");
  return body;
}

function lastAlert(output: string): string {
  const alerts = output.split("\n").filter((line) => line.includes("[ALERT]"));
  return (alerts[0] ?? output.split("\n").at(-1) ?? "").replace(/^\[ALERT\]\s+\(\d+\)\s+:\s*/, "");
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
