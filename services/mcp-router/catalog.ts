/**
 * The router's tool catalog: the union of the tools every platform service describes, as MCP tools.
 * Pure: the follower feeds it Describe answers, the MCP servers read it.
 */
import type { InvokeMode, ToolMessage } from "../../proto/mod.ts";
import { checkSchemaLimits, compileValidator } from "../runtime/schema_validator.ts";
import {
  EMPTY_SURFACE,
  mergeSurface,
  type ServiceSurface,
  type Surface,
} from "./surface_catalog.ts";

/** A JSON Schema object. */
export type JsonSchema = Record<string, unknown>;

/** What one backend service offers, from its Describe answer. */
export interface ServiceTools extends ServiceSurface {
  /** Consul service name, e.g. `agent-echo`. */
  readonly service: string;
  readonly version: string;
  readonly tools: readonly ToolMessage[];
}

/** One tool as the router serves it. */
export interface CatalogTool {
  /** The MCP name: the backend's name, or `<service>.<tool>` when several services offer it. */
  readonly name: string;
  /** The Consul service that serves it. */
  readonly service: string;
  /** The name the backend knows it by. */
  readonly backendName: string;
  readonly title: string;
  readonly description: string;
  readonly inputSchema: JsonSchema;
  readonly outputSchema?: JsonSchema;
  readonly annotations?: Record<string, unknown>;
  /** How the backend is called (`UNARY` for older services). */
  readonly mode: InvokeMode;
}

/** The merged catalog. */
export interface Catalog {
  /** Sorted by name. */
  readonly tools: readonly CatalogTool[];
  readonly byName: ReadonlyMap<string, CatalogTool>;
  /** Tool names offered by several services, each served under prefixed names. */
  readonly conflicts: readonly string[];
  /** Tools left out, and why. */
  readonly problems: readonly string[];
  /** Resources, templates and prompts. */
  readonly surface: Surface;
  /** Equal for equal catalogs: compare it to detect a change. */
  readonly fingerprint: string;
}

/** The empty catalog. */
export const EMPTY_CATALOG: Catalog = mergeCatalog([], EMPTY_SURFACE);

/** Merges what each service offers into one catalog, prefixing names several services share. */
export function mergeCatalog(
  services: readonly ServiceTools[],
  surface: Surface = mergeSurface(services),
): Catalog {
  const problems: string[] = [];
  const offers = new Map<string, { service: string; tool: ToolMessage }[]>();
  const sorted = [...services].sort((a, b) => compare(a.service, b.service));
  for (const { service, tools } of sorted) {
    const seen = new Set<string>();
    for (const tool of tools) {
      if (seen.has(tool.name)) {
        problems.push(`Service "${service}" describes tool "${tool.name}" twice`);
        continue;
      }
      seen.add(tool.name);
      const list = offers.get(tool.name) ?? [];
      list.push({ service, tool });
      offers.set(tool.name, list);
    }
  }
  const tools: CatalogTool[] = [];
  const conflicts: string[] = [];
  for (const [name, list] of offers) {
    if (list.length > 1) conflicts.push(name);
    for (const { service, tool } of list) {
      const publicName = list.length > 1 ? `${service}.${name}` : name;
      const built = buildTool(publicName, service, tool, problems);
      if (built !== undefined) tools.push(built);
    }
  }
  tools.sort((a, b) => compare(a.name, b.name));
  conflicts.sort(compare);
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  return Object.freeze({
    tools: Object.freeze(tools),
    byName,
    conflicts: Object.freeze(conflicts),
    problems: Object.freeze(problems),
    surface,
    fingerprint: JSON.stringify(tools) + surface.fingerprint,
  });
}

/** The catalog as an MCP `tools/list` result. */
export function listTools(catalog: Catalog): { tools: Record<string, unknown>[] } {
  return {
    tools: catalog.tools.map((tool) => {
      const entry: Record<string, unknown> = {
        name: tool.name,
        description: tool.description,
        inputSchema: tool.inputSchema,
      };
      if (tool.title) entry.title = tool.title;
      if (tool.outputSchema) entry.outputSchema = tool.outputSchema;
      if (tool.annotations) entry.annotations = tool.annotations;
      return entry;
    }),
  };
}

function buildTool(
  name: string,
  service: string,
  tool: ToolMessage,
  problems: string[],
): CatalogTool | undefined {
  const where = `tool "${tool.name}" of service "${service}"`;
  if (!TOOL_NAME.test(tool.name)) {
    problems.push(`Invalid name of ${where}: not 1 to 128 letters, digits, "_", "-" or "."`);
    return undefined;
  }
  if (tool.title.length > MAX_TITLE || tool.description.length > MAX_DESCRIPTION) {
    problems.push(`Invalid ${where}: title or description too long`);
    return undefined;
  }
  const inputSchema = parseObject(tool.inputSchemaJson, `input schema of ${where}`, problems);
  if (inputSchema === undefined) return undefined;
  if (inputSchema.type !== "object") {
    problems.push(`Invalid input schema of ${where}: type must be "object"`);
    return undefined;
  }
  const refused = schemaProblem(tool.inputSchemaJson, inputSchema);
  if (refused !== undefined) {
    problems.push(`Invalid input schema of ${where}: ${refused}`);
    return undefined;
  }
  const outputSchema = tool.outputSchemaJson
    ? parseObject(tool.outputSchemaJson, `output schema of ${where}`, problems)
    : undefined;
  const annotations = tool.annotationsJson
    ? parseObject(tool.annotationsJson, `annotations of ${where}`, problems)
    : undefined;
  const built: CatalogTool = {
    name,
    service,
    backendName: tool.name,
    title: tool.title,
    description: tool.description,
    inputSchema,
    ...(outputSchema?.type === "object" ? { outputSchema } : {}),
    ...(annotations ? { annotations } : {}),
    mode: tool.mode === "STREAM" || tool.mode === "SESSION" ? tool.mode : "UNARY",
  };
  return built;
}

/** Tool names the router serves (MCP's own rule, plus a length bound). */
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const MAX_TITLE = 1024;
const MAX_DESCRIPTION = 16 * 1024;
const MAX_JSON_TEXT = 64 * 1024;

/** Why a schema is refused (too large, too deep, or it does not compile on RE2), by its text. */
const schemaVerdicts = new Map<string, string | undefined>();
const MAX_VERDICTS = 1024;

function schemaProblem(text: string, schema: JsonSchema): string | undefined {
  if (schemaVerdicts.has(text)) return schemaVerdicts.get(text);
  let verdict: string | undefined;
  try {
    compileValidator(schema);
  } catch (error) {
    verdict = (error as Error).message.split("\n")[0];
  }
  // Catalogs are rebuilt on every change: remember recent verdicts, boundedly.
  if (schemaVerdicts.size >= MAX_VERDICTS) schemaVerdicts.clear();
  schemaVerdicts.set(text, verdict);
  return verdict;
}

function parseObject(text: string, what: string, problems: string[]): JsonSchema | undefined {
  if (text.length > MAX_JSON_TEXT) {
    problems.push(`Invalid ${what}: ${text.length} bytes, more than ${MAX_JSON_TEXT}`);
    return undefined;
  }
  try {
    const value = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      checkSchemaLimits(value);
      return value;
    }
    problems.push(`Invalid ${what}: not a JSON object`);
  } catch (error) {
    problems.push(`Invalid ${what}: ${(error as Error).message}`);
  }
  return undefined;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
