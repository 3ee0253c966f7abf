/**
 * Renders HAProxy's config from the load balancer model through Handlebars templates.
 *
 * Handlebars escapes for HTML, which means nothing in `haproxy.cfg`; so every string the templates
 * see is escaped for HAProxy's config syntax instead ({@linkcode escapeHaproxyWord}): spaces, `#`,
 * quotes, `\` and `$` are backslash-escaped and a line break makes the render fail, so no value
 * can end a line, start a comment or add a directive, even one that validation let through.
 */

import Handlebars from "handlebars";
import type { LbBackend, LbModel, LbSlot } from "./model.ts";
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
    mcp: backendView(model.mcp, model.settings.bindAddress),
    exposed: model.exposed.map((backend) => backendView(backend, model.settings.bindAddress)),
  };
}

/** The per-client limits of the MCP frontend, or null when there are none. */
function clientLimitsView(settings: LbModel["settings"]): Record<string, number> | null {
  const { clientMaxConnections, clientMaxRequestRate } = settings;
  if (clientMaxConnections === 0 && clientMaxRequestRate === 0) return null;
  // HAProxy counts the rate over 10 s: the limit per second times ten.
  return { maxConnections: clientMaxConnections, maxRequestsPer10s: clientMaxRequestRate * 10 };
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
