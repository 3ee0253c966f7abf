/**
 * What a service offers: its tools, each with schemas, a validator and a handler; and, for services
 * that serve more of MCP, resources, resource templates and prompts.
 */
import type { McpContentBlock, McpResourceContents } from "./content_blocks.ts";

/** A JSON Schema object (draft 2020-12 subset, as MCP uses it). */
export type JsonSchema = Record<string, unknown>;

/** Progress reported by a running tool. */
export interface ToolProgress {
  progress: number;
  total?: number;
  message?: string;
}

/** What a tool handler gets besides its arguments. */
export interface ToolContext {
  /** The ID of the instance serving the call (its Consul service ID). */
  readonly instanceId: string;
  /** The caller's request ID, for logs. */
  readonly requestId: string;
  /** Aborted when the caller cancels or the deadline passes. */
  readonly signal: AbortSignal;
  /** Reports progress; a no-op for unary calls. */
  progress(update: ToolProgress): void;
  /** Sends a log line to a streaming caller; a no-op for unary calls. */
  log(message: string): void;
  /** Sends an MCP log message (`notifications/message`); a no-op for unary calls. */
  logMessage(level: McpLogLevel, data: unknown, logger?: string): void;
  /**
   * Asks the client (`sampling/createMessage`, `elicitation/create`) and resolves with its result.
   * Only tools of mode `session` may ask; others get FAILED_PRECONDITION. A refusal by the client
   * rejects with a {@linkcode ClientRequestError}.
   */
  ask(
    method: ClientRequestMethod,
    params: Record<string, unknown>,
  ): Promise<Record<string, unknown>>;
}

/** MCP log levels, from the least to the most severe (RFC 5424). */
export const MCP_LOG_LEVELS = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency",
] as const;

/** An MCP log level. */
export type McpLogLevel = typeof MCP_LOG_LEVELS[number];

/** What a tool may ask the client. */
export type ClientRequestMethod = "sampling/createMessage" | "elicitation/create";

/** The client answered a tool's request with a JSON-RPC error. */
export class ClientRequestError extends Error {
  /** The JSON-RPC error code. */
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.name = "ClientRequestError";
    this.code = code;
  }
}

/** A tool result given as MCP content blocks rather than one JSON value. */
export class ContentResult {
  readonly content: McpContentBlock[];
  readonly structuredContent: Record<string, unknown> | undefined;
  readonly isError: boolean;

  constructor(
    content: McpContentBlock[],
    options: { structuredContent?: Record<string, unknown>; isError?: boolean } = {},
  ) {
    this.content = content;
    this.structuredContent = options.structuredContent;
    this.isError = options.isError ?? false;
  }
}

/** How the router calls a tool: see `InvokeMode` in `platform.proto`. */
export type ToolMode = "unary" | "stream" | "session";

/** MCP tool annotations. */
export interface ToolAnnotations {
  readOnlyHint?: boolean;
  idempotentHint?: boolean;
  destructiveHint?: boolean;
  openWorldHint?: boolean;
}

/** One tool: `parse` validates raw arguments (throwing INVALID_ARGUMENT), `run` serves the call. */
export interface ToolDefinition<Args = unknown, Result = unknown> {
  name: string;
  title: string;
  description: string;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
  annotations?: ToolAnnotations;
  /** `unary` when absent. */
  mode?: ToolMode;
  parse(raw: unknown): Args;
  run(args: Args, context: ToolContext): Promise<Result> | Result;
}

/** The kind of a platform service, also its Consul tag. */
export type ServiceKind = "agent" | "tool" | "worker";

/** A service: its Consul name, kind, default port and tools. */
export interface ServiceDefinition {
  /** Consul service name, e.g. `agent-echo`. */
  name: string;
  /** Swarm/program name, e.g. `echo-agent`; the default prefix of instance IDs. */
  program: string;
  kind: ServiceKind;
  version: string;
  defaultPort: number;
  // deno-lint-ignore no-explicit-any
  tools: ToolDefinition<any, any>[];
  resources?: ResourceDefinition[];
  resourceTemplates?: ResourceTemplateDefinition[];
  prompts?: PromptDefinition[];
}

/** What a resource, prompt or completion handler gets. */
export interface RequestContext {
  readonly instanceId: string;
  readonly requestId: string;
  readonly signal: AbortSignal;
}

/** Suggests values for one argument, given its partial `value` and the other arguments. */
export type Completer = (
  argument: string,
  value: string,
  context: Readonly<Record<string, string>>,
) => string[] | Promise<string[]>;

/** A listed resource. */
export interface ResourceDefinition {
  uri: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  read(context: RequestContext): McpResourceContents[] | Promise<McpResourceContents[]>;
  /** Calls `changed` each time the resource changes, until `signal` aborts. */
  watch?(signal: AbortSignal, changed: () => void): void;
}

/** A family of resources under an RFC 6570 level-1 URI template. */
export interface ResourceTemplateDefinition {
  uriTemplate: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  read(
    uri: string,
    variables: Readonly<Record<string, string>>,
    context: RequestContext,
  ): McpResourceContents[] | Promise<McpResourceContents[]>;
  complete?: Completer;
}

/** One message of a rendered prompt. */
export interface PromptMessageDefinition {
  role: "user" | "assistant";
  content: McpContentBlock;
}

/** A prompt and its arguments. */
export interface PromptDefinition {
  name: string;
  title?: string;
  description?: string;
  arguments?: { name: string; description?: string; required?: boolean }[];
  get(
    args: Readonly<Record<string, string>>,
    context: RequestContext,
  ):
    | { description?: string; messages: PromptMessageDefinition[] }
    | Promise<{ description?: string; messages: PromptMessageDefinition[] }>;
  complete?: Completer;
}
