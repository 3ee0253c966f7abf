/**
 * Renders HAProxy's config from the load balancer model through Handlebars templates.
 *
 * Handlebars escapes for HTML, which means nothing in `haproxy.cfg`; so every string the templates
 * see is escaped for HAProxy's config syntax instead ({@linkcode escapeHaproxyWord}): spaces, `#`,
 * quotes, `\` and `$` are backslash-escaped and a line break makes the render fail, so no value
 * can end a line, start a comment or add a directive, even one that validation let through.
 */

import Handlebars from "handlebars";
import type { LbBackend, LbModel, LbSettings, LbSlot } from "./model.ts";
import { formatDuration } from "./duration.ts";
import { PlatformError } from "../services/runtime/platform_error.ts";

/** The main template and its partials, by partial name, as text. */
export interface HaproxyTemplates {
  readonly main: string;
  readonly partials: Readonly<Record<string, string>>;
}

/** A template that does not compile or does not fit the model. */
export class TemplateError extends PlatformError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: "TEMPLATE_INVALID", cause: options.cause });
    this.name = "TemplateError";
  }
}

const ADDRESS = /^[A-Za-z0-9.:\-\[\]]+$/;

/** Quotes a value for an HAProxy config line; `$` is escaped so no variable is expanded. */
export function quoteHaproxy(value: string): string {
  if (/[\r\n\0]/.test(value)) {
    throw new TypeError(`Cannot quote ${JSON.stringify(value)}: it holds a line break`);
  }
  return `"${value.replace(/[\\"$']/g, (char) => `\\${char}`)}"`;
}

/** Escapes `value` as one word of an HAProxy config line; throws on control characters. */
export function escapeHaproxyWord(value: string): string {
  // deno-lint-ignore no-control-regex -- control characters are what is looked for
  if (/[\x00-\x1f\x7f]/.test(value)) {
    throw new TemplateError(
      `Cannot write ${JSON.stringify(value)} into haproxy.cfg: it holds a control character`,
    );
  }
  return value.replace(/[\s#"'\\$]/g, (char) => `\\${char}`);
}

/** A string as the templates see it: escaped when printed, raw for the `quote` helper. */
class ConfigWord {
  constructor(readonly raw: string) {}
  toString(): string {
    return escapeHaproxyWord(this.raw);
  }
}

/** `value` with every non-empty string wrapped, so that printing it escapes it. */
function escapeView(value: unknown): unknown {
  if (typeof value === "string") return value === "" ? value : new ConfigWord(value);
  if (Array.isArray(value)) return value.map(escapeView);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, escapeView(item)]));
  }
  return value;
}

function slotView(slot: LbSlot, h2: boolean): Record<string, unknown> {
  if (slot.instance && !ADDRESS.test(slot.instance.address)) {
    throw new TemplateError(
      `Cannot render slot "${slot.name}": instance "${slot.instance.id}" has the address "${slot.instance.address}"`,
    );
  }
  return { name: slot.name, instance: slot.instance, ready: slot.state === "ready", h2 };
}

function backendView(backend: LbBackend, bindAddress: string): Record<string, unknown> {
  const h2 = backend.mode === "grpc";
  return {
    name: backend.name,
    service: backend.service,
    port: backend.port,
    bindAddress,
    h2,
    proxyMode: backend.mode === "tcp" ? "tcp" : "http",
    slots: backend.slots.map((slot) => slotView(slot, h2)),
  };
}

/** The data the templates see: the model plus what a template should not compute. */
export function templateView(model: LbModel): Record<string, unknown> {
  return {
    settings: model.settings,
    clientLimits: clientLimitsView(model.settings),
    frontDoor: frontDoorView(model.settings, model.exposed.length),
    mcp: backendView(model.mcp, model.settings.bindAddress),
    exposed: model.exposed.map((backend) => backendView(backend, model.settings.bindAddress)),
  };
}

/** TCP keep-alive probes after the idle time: their interval, and how many a silent client misses. */
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_PROBES = 3;

/**
 * The per-client limits of the MCP frontend, or null when there are none.
 *
 * A rate "R calls/s, burst B" is a token bucket; HAProxy counts rates over a sliding window
 * instead. A window of W seconds holding at most B requests lets a client send B at once and
 * then B every W seconds, so W = B / R gives the same burst and the same long-run rate (with the
 * defaults, 200 per 1 s). The old 10 s window at R x 10 allowed a burst of ten seconds' worth.
 * Only requests that pass count (`sc-inc-gpc0`): a client over its rate still gets R calls/s
 * served, and its refused requests do not lock it out for longer.
 */
function clientLimitsView(settings: LbSettings): Record<string, unknown> | null {
  const {
    clientMaxConnections,
    clientMaxRequestRate,
    clientRateBurst,
    clientMaxConcurrent,
    sourceMaxRequestRate,
  } = settings;
  if (
    clientMaxConnections === 0 && clientMaxRequestRate === 0 && clientMaxConcurrent === 0 &&
    sourceMaxRequestRate === 0
  ) {
    return null;
  }
  const windowMs = clientMaxRequestRate > 0
    ? Math.max(1, Math.round((1000 * clientRateBurst) / clientMaxRequestRate))
    : 1000;
  return {
    maxConnections: clientMaxConnections,
    maxConcurrent: clientMaxConcurrent,
    maxPerWindow: clientMaxRequestRate > 0 ? clientRateBurst : 0,
    sourceMaxPerWindow: sourceMaxRequestRate > 0
      ? Math.max(1, Math.round((sourceMaxRequestRate * windowMs) / 1000))
      : 0,
    window: formatDuration(windowMs),
    // Entries outlive their window, so a client's rate is still known when it comes back.
    expire: formatDuration(Math.max(30_000, 2 * windowMs)),
    retryAfter: String(Math.max(1, Math.ceil(windowMs / 1000))),
  };
}

/** Timeouts and connection limits of the front door, as HAProxy durations. */
function frontDoorView(settings: LbSettings, exposedCount: number): Record<string, unknown> {
  return {
    // Every frontend may fill up at once, with room for the stats page and checks.
    globalMaxConnections: settings.maxConnections * (1 + exposedCount) + 256,
    maxConnections: settings.maxConnections,
    serverMaxConnections: settings.serverMaxConnections,
    queueTimeout: formatDuration(settings.queueTimeoutMs),
    queueRetryAfter: String(Math.max(1, Math.ceil(settings.queueTimeoutMs / 1000))),
    headerTimeout: formatDuration(settings.headerTimeoutMs),
    bodyTimeout: formatDuration(settings.bodyTimeoutMs),
    clientTimeout: formatDuration(settings.clientTimeoutMs),
    keepAliveTimeout: formatDuration(settings.keepAliveTimeoutMs),
    keepAliveIdle: formatDuration(settings.clientKeepAliveIdleMs),
    keepAliveInterval: formatDuration(KEEPALIVE_INTERVAL_MS),
    keepAliveProbes: KEEPALIVE_PROBES,
    // Data a client has not acknowledged for as long as the probes would take: the client is gone
    // (keep-alive probes are only sent on an idle connection, not under SSE heartbeats).
    unackedTimeout: formatDuration(
      settings.clientKeepAliveIdleMs + KEEPALIVE_INTERVAL_MS * KEEPALIVE_PROBES,
    ),
  };
}

/** Renders a complete config; throws {@linkcode TemplateError} when the templates are at fault. */
export function renderHaproxyConfig(model: LbModel, templates: HaproxyTemplates): string {
  const handlebars = Handlebars.create();
  handlebars.registerHelper(
    "quote",
    (value: unknown) => quoteHaproxy(value instanceof ConfigWord ? value.raw : String(value)),
  );
  const view = escapeView(templateView(model));
  try {
    for (const [name, text] of Object.entries(templates.partials)) {
      handlebars.registerPartial(name, handlebars.compile(text, { noEscape: true, strict: true }));
    }
    const template = handlebars.compile(templates.main, { noEscape: true, strict: true });
    return template(view).replace(/\n{3,}/g, "\n\n");
  } catch (error) {
    if (error instanceof TemplateError) throw error;
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new TemplateError(`Cannot render the HAProxy template: ${reason}`, { cause: error });
  }
}
