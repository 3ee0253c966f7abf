/**
 * Resources, resource templates and prompts of every service, merged into what the router serves.
 * Pure, like `catalog.ts`, whose rules it follows: what a backend describes is checked before it is
 * served, and a name or URI two services claim is a conflict. Prompts in conflict are served as
 * `<service>.<prompt>` (as tools are); a resource URI or URI template in conflict cannot be renamed
 * without changing what it names, so it is left out and reported.
 */
import type {
  PromptMessageInfo,
  ResourceMessage,
  ResourceTemplateMessage,
} from "../../proto/mod.ts";
import { compileUriTemplate, type UriTemplate } from "../runtime/uri_template.ts";

/** What one service describes besides tools. */
export interface ServiceSurface {
  readonly service: string;
  readonly resources?: readonly ResourceMessage[];
  readonly resourceTemplates?: readonly ResourceTemplateMessage[];
  readonly prompts?: readonly PromptMessageInfo[];
}

/** A resource as the router serves it. */
export interface CatalogResource {
  readonly uri: string;
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly mimeType: string;
  readonly service: string;
}

/** A resource template as the router serves it. */
export interface CatalogTemplate {
  readonly uriTemplate: string;
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly mimeType: string;
  readonly service: string;
  readonly completable: boolean;
  readonly compiled: UriTemplate;
}

/** A prompt as the router serves it. */
export interface CatalogPrompt {
  /** The MCP name: the backend's, or `<service>.<prompt>` when several services offer it. */
  readonly name: string;
  readonly backendName: string;
  readonly service: string;
  readonly title: string;
  readonly description: string;
  readonly arguments: readonly { name: string; description: string; required: boolean }[];
  readonly completable: boolean;
}

/** A name or URI several services claim. */
export interface SurfaceConflict {
  readonly kind: "resource" | "template" | "prompt";
  readonly name: string;
  readonly services: readonly string[];
}

/** The merged resources, templates and prompts. */
export interface Surface {
  /** Sorted by URI. */
  readonly resources: readonly CatalogResource[];
  /** Sorted by template. */
  readonly templates: readonly CatalogTemplate[];
  /** Sorted by name. */
  readonly prompts: readonly CatalogPrompt[];
  readonly promptsByName: ReadonlyMap<string, CatalogPrompt>;
  readonly conflicts: readonly SurfaceConflict[];
  /** Entries left out, and why. */
  readonly problems: readonly string[];
  /** Equal for equal surfaces. */
  readonly fingerprint: string;
}

/** Longest URI, name, title or description accepted from a backend. */
const MAX_URI = 2048;
const MAX_NAME = 128;
const MAX_TEXT = 16 * 1024;
const MAX_ARGUMENTS = 64;
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/;

/** The empty surface. */
export const EMPTY_SURFACE: Surface = mergeSurface([]);

/** Merges what each service describes. */
export function mergeSurface(services: readonly ServiceSurface[]): Surface {
  const problems: string[] = [];
  const sorted = [...services].sort((a, b) => compare(a.service, b.service));
  const resourceOffers = new Map<string, CatalogResource[]>();
  const templateOffers = new Map<string, CatalogTemplate[]>();
  const promptOffers = new Map<string, CatalogPrompt[]>();
  for (const surface of sorted) {
    const { service } = surface;
    for (const message of surface.resources ?? []) {
      const resource = checkResource(service, message, problems);
      if (resource) offer(resourceOffers, resource.uri, resource, problems, service, "resource");
    }
    for (const message of surface.resourceTemplates ?? []) {
      const template = checkTemplate(service, message, problems);
      if (template) {
        offer(templateOffers, template.uriTemplate, template, problems, service, "template");
      }
    }
    for (const message of surface.prompts ?? []) {
      const prompt = checkPrompt(service, message, problems);
      if (prompt) offer(promptOffers, prompt.backendName, prompt, problems, service, "prompt");
    }
  }
  const conflicts: SurfaceConflict[] = [];
  const resources: CatalogResource[] = [];
  for (const [uri, list] of resourceOffers) {
    if (list.length > 1) {
      conflicts.push({ kind: "resource", name: uri, services: list.map((r) => r.service) });
    } else resources.push(list[0]);
  }
  const templates: CatalogTemplate[] = [];
  for (const [uriTemplate, list] of templateOffers) {
    if (list.length > 1) {
      conflicts.push({ kind: "template", name: uriTemplate, services: list.map((t) => t.service) });
    } else templates.push(list[0]);
  }
  const prompts: CatalogPrompt[] = [];
  for (const [name, list] of promptOffers) {
    if (list.length > 1) {
      conflicts.push({ kind: "prompt", name, services: list.map((p) => p.service) });
      for (const prompt of list) prompts.push({ ...prompt, name: `${prompt.service}.${name}` });
    } else prompts.push(list[0]);
  }
  resources.sort((a, b) => compare(a.uri, b.uri));
  templates.sort((a, b) => compare(a.uriTemplate, b.uriTemplate));
  prompts.sort((a, b) => compare(a.name, b.name));
  conflicts.sort((a, b) => compare(`${a.kind}:${a.name}`, `${b.kind}:${b.name}`));
  return Object.freeze({
    resources: Object.freeze(resources),
    templates: Object.freeze(templates),
    prompts: Object.freeze(prompts),
    promptsByName: new Map(prompts.map((prompt) => [prompt.name, prompt])),
    conflicts: Object.freeze(conflicts),
    problems: Object.freeze(problems),
    fingerprint: JSON.stringify([
      resources,
      templates.map(({ compiled: _, ...rest }) => rest),
      prompts,
      conflicts,
    ]),
  });
}

/** The service that serves `uri`: a listed resource first, then the first template matching. */
export function resolveResource(surface: Surface, uri: string): string | undefined {
  const resource = surface.resources.find((r) => r.uri === uri);
  if (resource) return resource.service;
  return surface.templates.find((t) => t.compiled.match(uri) !== undefined)?.service;
}

/** Whether `uri` was left out because several services claim it. */
export function isConflicted(surface: Surface, uri: string): boolean {
  return surface.conflicts.some((c) => c.kind === "resource" && c.name === uri);
}

function offer<T>(
  offers: Map<string, T[]>,
  key: string,
  value: T,
  problems: string[],
  service: string,
  kind: string,
): void {
  const list = offers.get(key) ?? [];
  if (list.some((entry) => (entry as { service: string }).service === service)) {
    problems.push(`Service "${service}" describes ${kind} "${key}" twice`);
    return;
  }
  list.push(value);
  offers.set(key, list);
}

function text(value: unknown, what: string, problems: string[], max = MAX_TEXT): string | null {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string" || value.length > max) {
    problems.push(`Invalid ${what}: not a string of at most ${max} characters`);
    return null;
  }
  return value;
}

function checkResource(
  service: string,
  message: ResourceMessage,
  problems: string[],
): CatalogResource | undefined {
  const where = `resource of service "${service}"`;
  const uri = text(message?.uri, `URI of ${where}`, problems, MAX_URI);
  if (uri === null) return undefined;
  if (!URI.test(uri)) {
    problems.push(`Invalid URI of ${where}: ${JSON.stringify(uri.slice(0, 100))}`);
    return undefined;
  }
  const name = text(message.name, `name of resource "${uri}"`, problems, MAX_NAME);
  const title = text(message.title, `title of resource "${uri}"`, problems);
  const description = text(message.description, `description of resource "${uri}"`, problems);
  const mimeType = text(message.mimeType, `mimeType of resource "${uri}"`, problems, MAX_NAME);
  if (name === null || title === null || description === null || mimeType === null) return;
  return { uri, name: name || uri, title, description, mimeType, service };
}

function checkTemplate(
  service: string,
  message: ResourceTemplateMessage,
  problems: string[],
): CatalogTemplate | undefined {
  const where = `resource template of service "${service}"`;
  const uriTemplate = text(message?.uriTemplate, `template of ${where}`, problems, MAX_URI);
  if (uriTemplate === null) return undefined;
  let compiled: UriTemplate;
  try {
    compiled = compileUriTemplate(uriTemplate);
  } catch (error) {
    problems.push(`Invalid ${where}: ${(error as Error).message}`);
    return undefined;
  }
  if (!URI.test(uriTemplate)) {
    problems.push(`Invalid ${where}: ${JSON.stringify(uriTemplate.slice(0, 100))} is not a URI`);
    return undefined;
  }
  const name = text(message.name, `name of template "${uriTemplate}"`, problems, MAX_NAME);
  const title = text(message.title, `title of template "${uriTemplate}"`, problems);
  const description = text(message.description, `description of "${uriTemplate}"`, problems);
  const mimeType = text(message.mimeType, `mimeType of "${uriTemplate}"`, problems, MAX_NAME);
  if (name === null || title === null || description === null || mimeType === null) return;
  return {
    uriTemplate,
    name: name || uriTemplate,
    title,
    description,
    mimeType,
    service,
    completable: message.completable === true,
    compiled,
  };
}

function checkPrompt(
  service: string,
  message: PromptMessageInfo,
  problems: string[],
): CatalogPrompt | undefined {
  const where = `prompt of service "${service}"`;
  if (typeof message?.name !== "string" || !NAME.test(message.name)) {
    problems.push(`Invalid name of ${where}: not 1 to 128 letters, digits, "_", "-" or "."`);
    return undefined;
  }
  const title = text(message.title, `title of prompt "${message.name}"`, problems);
  const description = text(message.description, `description of "${message.name}"`, problems);
  if (title === null || description === null) return undefined;
  const args = Array.isArray(message.arguments) ? message.arguments : [];
  if (args.length > MAX_ARGUMENTS) {
    problems.push(`Invalid prompt "${message.name}": more than ${MAX_ARGUMENTS} arguments`);
    return undefined;
  }
  const checked: { name: string; description: string; required: boolean }[] = [];
  for (const argument of args) {
    if (typeof argument?.name !== "string" || !NAME.test(argument.name)) {
      problems.push(`Invalid argument name of prompt "${message.name}"`);
      return undefined;
    }
    const argDescription = text(argument.description, `argument of "${message.name}"`, problems);
    if (argDescription === null) return undefined;
    checked.push({
      name: argument.name,
      description: argDescription,
      required: argument.required === true,
    });
  }
  return {
    name: message.name,
    backendName: message.name,
    service,
    title,
    description,
    arguments: checked,
    completable: message.completable === true,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What one instance describes besides tools (`undefined`: it did not answer). */
export interface SurfaceDescription {
  readonly answer:
    | Pick<ServiceSurface, "resources" | "resourceTemplates" | "prompts">
    | undefined;
}

/**
 * The resources, templates and prompts of one service, decided as its tools are
 * (`tool_consensus.ts`): the description more than half of the passing instances give, whole;
 * without such a majority, `previous` stays (nothing, for a service never decided).
 */
export function decideSurface(
  descriptions: readonly SurfaceDescription[],
  previous: Omit<ServiceSurface, "service"> | undefined,
): Omit<ServiceSurface, "service"> | undefined {
  const counts = new Map<string, { surface: Omit<ServiceSurface, "service">; count: number }>();
  for (const { answer } of descriptions) {
    if (answer === undefined) continue;
    const surface = {
      resources: answer.resources ?? [],
      resourceTemplates: answer.resourceTemplates ?? [],
      prompts: answer.prompts ?? [],
    };
    const key = JSON.stringify(surface);
    const entry = counts.get(key) ?? { surface, count: 0 };
    entry.count++;
    counts.set(key, entry);
  }
  const winner = [...counts.values()].find((entry) => entry.count * 2 > descriptions.length);
  return winner?.surface ?? previous;
}
