/** echo-agent: returns the message it was given, and which instance served it. */
import { delay } from "../runtime/delay.ts";
import type { ServiceDefinition, ToolDefinition } from "../runtime/tool.ts";
import { PLATFORM_VERSION } from "../runtime/version.ts";

/** Arguments of `echo`. */
export interface EchoArgs {
  message: string;
  delay_ms?: number;
}

/** Result of `echo`. */
export interface EchoResult {
  message: string;
  instance_id: string;
  delay_ms: number;
}

/** Longest accepted delay. */
export const MAX_DELAY_MS = 10_000;

/** The `echo` tool. */
export const ECHO_TOOL: ToolDefinition<EchoArgs, EchoResult> = {
  name: "echo",
  title: "Echo",
  description: "Returns the message, and the ID of the instance that served it. " +
    "An optional delay_ms makes the call slower, for testing balancing.",
  inputSchema: {
    type: "object",
    properties: {
      message: { type: "string", maxLength: 65536, description: "Text to send back" },
      delay_ms: {
        type: "integer",
        minimum: 0,
        maximum: MAX_DELAY_MS,
        description: "Milliseconds to wait before answering",
      },
    },
    required: ["message"],
    additionalProperties: false,
  },
  outputSchema: {
    type: "object",
    properties: {
      message: { type: "string" },
      instance_id: { type: "string" },
      delay_ms: { type: "integer" },
    },
    required: ["message", "instance_id", "delay_ms"],
  },
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  parse: (raw) => raw as EchoArgs,
  async run(args, context) {
    const delayMs = args.delay_ms ?? 0;
    await delay(delayMs, { signal: context.signal });
    return { message: args.message, instance_id: context.instanceId, delay_ms: delayMs };
  },
};

/** The echo-agent service. */
export const ECHO_AGENT: ServiceDefinition = {
  name: "agent-echo",
  program: "echo-agent",
  kind: "agent",
  version: PLATFORM_VERSION,
  defaultPort: 50052,
  tools: [ECHO_TOOL],
};
