/**
 * conformance-server: the fixtures of the official MCP conformance suite (the `test_*` tools,
 * `json_schema_2020_12_tool`, the `test://` resources and template, the `test_*` prompts and
 * completion), served over the platform's contract so the suite can run through a router. Not
 * deployed by default (`deploy --with conformance-server`).
 */
import type { McpContentBlock } from "../runtime/content_blocks.ts";
import {
  ClientRequestError,
  ContentResult,
  type PromptDefinition,
  type ResourceDefinition,
  type ResourceTemplateDefinition,
  type ServiceDefinition,
  type ToolDefinition,
} from "../runtime/tool.ts";
import { delay } from "../runtime/delay.ts";
import { PLATFORM_VERSION } from "../runtime/version.ts";
import {
  JSON_SCHEMA_2020_12_INPUT_SCHEMA,
  SEP1034_SCHEMA,
  SEP1330_SCHEMA,
  TEST_AUDIO_BASE64,
  TEST_IMAGE_BASE64,
} from "./fixtures.ts";

/** Options of {@linkcode conformanceServer}. */
export interface ConformanceServerOptions {
  /** How often `test://watched-resource` changes; 0 never. */
  watchIntervalMs: number;
  /** Pause between a tool's log or progress messages. */
  stepDelayMs?: number;
}

const NO_ARGUMENTS = { type: "object", properties: {} };

function text(value: string): McpContentBlock {
  return { type: "text", text: value };
}

/** A tool without arguments answering fixed content. */
function fixedTool(
  name: string,
  description: string,
  content: McpContentBlock[],
): ToolDefinition<Record<string, never>, ContentResult> {
  return {
    name,
    title: "",
    description,
    inputSchema: NO_ARGUMENTS,
    outputSchema: {},
    parse: (raw) => raw as Record<string, never>,
    run: () => new ContentResult(content),
  };
}

/** A session tool that elicits a form and reports the answer. */
function elicitingTool(
  name: string,
  description: string,
  message: string,
  requestedSchema: Record<string, unknown>,
): ToolDefinition<Record<string, never>, ContentResult> {
  return {
    name,
    title: "",
    description,
    inputSchema: NO_ARGUMENTS,
    outputSchema: {},
    mode: "session",
    parse: (raw) => raw as Record<string, never>,
    async run(_args, context) {
      try {
        const answer = await context.ask("elicitation/create", { message, requestedSchema });
        return new ContentResult([
          text(
            `Elicitation completed: action=${answer.action}, content=${
              JSON.stringify(answer.content ?? {})
            }`,
          ),
        ]);
      } catch (error) {
        return new ContentResult([text(`Elicitation not supported or error: ${describe(error)}`)]);
      }
    },
  };
}

function describe(error: unknown): string {
  return error instanceof ClientRequestError || error instanceof Error
    ? error.message
    : String(error);
}

/** The conformance-server service. */
export function conformanceServer(options: ConformanceServerOptions): ServiceDefinition {
  const step = options.stepDelayMs ?? 50;
  // deno-lint-ignore no-explicit-any
  const tools: ToolDefinition<any, any>[] = [
    fixedTool("test_simple_text", "Tests simple text content response", [
      text("This is a simple text response for testing."),
    ]),
    fixedTool("test_image_content", "Tests image content response", [
      { type: "image", data: TEST_IMAGE_BASE64, mimeType: "image/png" },
    ]),
    fixedTool("test_audio_content", "Tests audio content response", [
      { type: "audio", data: TEST_AUDIO_BASE64, mimeType: "audio/wav" },
    ]),
    fixedTool("test_embedded_resource", "Tests embedded resource content response", [{
      type: "resource",
      resource: {
        uri: "test://embedded-resource",
        mimeType: "text/plain",
        text: "This is an embedded resource content.",
      },
    }]),
    fixedTool(
      "test_multiple_content_types",
      "Tests response with multiple content types (text, image, resource)",
      [
        text("Multiple content types test:"),
        { type: "image", data: TEST_IMAGE_BASE64, mimeType: "image/png" },
        {
          type: "resource",
          resource: {
            uri: "test://mixed-content-resource",
            mimeType: "application/json",
            text: JSON.stringify({ test: "data", value: 123 }),
          },
        },
      ],
    ),
    {
      name: "test_tool_with_logging",
      title: "",
      description: "Tests tool that emits log messages during execution",
      inputSchema: NO_ARGUMENTS,
      outputSchema: {},
      mode: "stream",
      parse: (raw: unknown) => raw,
      async run(_args: unknown, context) {
        context.logMessage("info", "Tool execution started");
        await delay(step, { signal: context.signal });
        context.logMessage("info", "Tool processing data");
        await delay(step, { signal: context.signal });
        context.logMessage("info", "Tool execution completed");
        return new ContentResult([text("Tool with logging executed successfully")]);
      },
    } satisfies ToolDefinition<unknown, ContentResult>,
    {
      name: "test_tool_with_progress",
      title: "",
      description: "Tests tool that reports progress notifications",
      inputSchema: NO_ARGUMENTS,
      outputSchema: {},
      mode: "stream",
      parse: (raw: unknown) => raw,
      async run(_args: unknown, context) {
        for (const done of [0, 50, 100]) {
          context.progress({
            progress: done,
            total: 100,
            message: `Completed step ${done} of 100`,
          });
          if (done < 100) await delay(step, { signal: context.signal });
        }
        return new ContentResult([text("Progress reported: 0, 50, 100 of 100")]);
      },
    } satisfies ToolDefinition<unknown, ContentResult>,
    {
      name: "test_error_handling",
      title: "",
      description: "Tests error response handling",
      inputSchema: NO_ARGUMENTS,
      outputSchema: {},
      parse: (raw: unknown) => raw,
      run: () =>
        new ContentResult([text("This tool intentionally returns an error for testing")], {
          isError: true,
        }),
    } satisfies ToolDefinition<unknown, ContentResult>,
    fixedTool(
      "test_reconnection",
      "Tests SSE stream disconnection and client reconnection (SEP-1699). Through the router it " +
        "answers at once: the router keeps no event store to resume a stream from.",
      [text("Reconnection test completed successfully.")],
    ),
    {
      name: "test_sampling",
      title: "",
      description: "Tests server-initiated sampling (LLM completion request)",
      inputSchema: {
        type: "object",
        properties: { prompt: { type: "string", description: "The prompt to send to the LLM" } },
        required: ["prompt"],
      },
      outputSchema: {},
      mode: "session",
      parse: (raw: unknown) => raw as { prompt: string },
      async run(args: { prompt: string }, context) {
        try {
          const answer = await context.ask("sampling/createMessage", {
            messages: [{ role: "user", content: { type: "text", text: args.prompt } }],
            maxTokens: 100,
          });
          const content = answer.content as { text?: unknown } | undefined;
          const reply = typeof content?.text === "string" ? content.text : "No response";
          return new ContentResult([text(`LLM response: ${reply}`)]);
        } catch (error) {
          return new ContentResult([text(`Sampling not supported or error: ${describe(error)}`)]);
        }
      },
    } satisfies ToolDefinition<{ prompt: string }, ContentResult>,
    {
      name: "test_elicitation",
      title: "",
      description: "Tests server-initiated elicitation (user input request)",
      inputSchema: {
        type: "object",
        properties: { message: { type: "string", description: "The message to show the user" } },
        required: ["message"],
      },
      outputSchema: {},
      mode: "session",
      parse: (raw: unknown) => raw as { message: string },
      async run(args: { message: string }, context) {
        try {
          const answer = await context.ask("elicitation/create", {
            message: args.message,
            requestedSchema: {
              type: "object",
              properties: { response: { type: "string", description: "User's response" } },
              required: ["response"],
            },
          });
          return new ContentResult([
            text(
              `User response: action=${answer.action}, content=${
                JSON.stringify(answer.content ?? {})
              }`,
            ),
          ]);
        } catch (error) {
          return new ContentResult([
            text(`Elicitation not supported or error: ${describe(error)}`),
          ]);
        }
      },
    } satisfies ToolDefinition<{ message: string }, ContentResult>,
    elicitingTool(
      "test_elicitation_sep1034_defaults",
      "Tests elicitation with default values per SEP-1034",
      "Please review and update the form fields with defaults",
      SEP1034_SCHEMA,
    ),
    elicitingTool(
      "test_elicitation_sep1330_enums",
      "Tests elicitation with enum schema improvements per SEP-1330",
      "Please select options from the enum fields",
      SEP1330_SCHEMA,
    ),
    {
      name: "json_schema_2020_12_tool",
      title: "",
      description: "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
      inputSchema: JSON_SCHEMA_2020_12_INPUT_SCHEMA,
      outputSchema: {},
      parse: (raw: unknown) => raw,
      run: (args: unknown) =>
        new ContentResult([
          text(`JSON Schema 2020-12 tool called with: ${JSON.stringify(args)}`),
        ]),
    } satisfies ToolDefinition<unknown, ContentResult>,
  ];

  const resources: ResourceDefinition[] = [
    {
      uri: "test://static-text",
      name: "static-text",
      title: "Static Text Resource",
      description: "A static text resource for testing",
      mimeType: "text/plain",
      read: () => [{
        uri: "test://static-text",
        mimeType: "text/plain",
        text: "This is the content of the static text resource.",
      }],
    },
    {
      uri: "test://static-binary",
      name: "static-binary",
      title: "Static Binary Resource",
      description: "A static binary resource (image) for testing",
      mimeType: "image/png",
      read: () => [{ uri: "test://static-binary", mimeType: "image/png", blob: TEST_IMAGE_BASE64 }],
    },
    {
      uri: "test://watched-resource",
      name: "watched-resource",
      title: "Watched Resource",
      description: "A resource that changes on a timer",
      mimeType: "text/plain",
      read: () => [{
        uri: "test://watched-resource",
        mimeType: "text/plain",
        text: "Watched resource content",
      }],
      watch(signal, changed) {
        if (options.watchIntervalMs <= 0) return;
        const timer = setInterval(changed, options.watchIntervalMs);
        signal.addEventListener("abort", () => clearInterval(timer), { once: true });
      },
    },
  ];

  const ids = Array.from({ length: 20 }, (_, i) => String(i + 1));
  const resourceTemplates: ResourceTemplateDefinition[] = [{
    uriTemplate: "test://template/{id}/data",
    name: "template",
    title: "Resource Template",
    description: "A resource template with parameter substitution",
    mimeType: "application/json",
    read: (uri, variables) => [{
      uri,
      mimeType: "application/json",
      text: JSON.stringify({
        id: variables.id,
        templateTest: true,
        data: `Data for ID: ${variables.id}`,
      }),
    }],
    complete: (argument, value) =>
      argument === "id" ? ids.filter((id) => id.startsWith(value)) : [],
  }];

  const suggestions = ["test", "testValue1", "testValue2", "paris", "park", "party"];
  const prompts: PromptDefinition[] = [
    {
      name: "test_simple_prompt",
      title: "Simple Test Prompt",
      description: "A simple prompt without arguments",
      get: () => ({
        messages: [{ role: "user", content: text("This is a simple prompt for testing.") }],
      }),
    },
    {
      name: "test_prompt_with_arguments",
      title: "Prompt With Arguments",
      description: "A prompt with required arguments",
      arguments: [
        { name: "arg1", description: "First test argument", required: true },
        { name: "arg2", description: "Second test argument", required: true },
      ],
      get: (args) => ({
        messages: [{
          role: "user",
          content: text(`Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'`),
        }],
      }),
      complete: (_argument, value) => suggestions.filter((s) => s.startsWith(value)),
    },
    {
      name: "test_prompt_with_embedded_resource",
      title: "Prompt With Embedded Resource",
      description: "A prompt that includes an embedded resource",
      arguments: [{
        name: "resourceUri",
        description: "URI of the resource to embed",
        required: true,
      }],
      get: (args) => ({
        messages: [
          {
            role: "user",
            content: {
              type: "resource",
              resource: {
                uri: args.resourceUri,
                mimeType: "text/plain",
                text: "Embedded resource content for testing.",
              },
            },
          },
          { role: "user", content: text("Please process the embedded resource above.") },
        ],
      }),
    },
    {
      name: "test_prompt_with_image",
      title: "Prompt With Image",
      description: "A prompt that includes image content",
      get: () => ({
        messages: [
          {
            role: "user",
            content: { type: "image", data: TEST_IMAGE_BASE64, mimeType: "image/png" },
          },
          { role: "user", content: text("Please analyze the image above.") },
        ],
      }),
    },
  ];

  return {
    name: "tool-conformance",
    program: "conformance-server",
    kind: "tool",
    version: PLATFORM_VERSION,
    defaultPort: 50055,
    tools,
    resources,
    resourceTemplates,
    prompts,
  };
}
