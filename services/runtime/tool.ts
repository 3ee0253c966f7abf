/** What a service offers: its tools, each with schemas, a validator and a handler. */

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
}

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
}
