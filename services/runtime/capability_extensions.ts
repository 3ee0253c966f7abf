/**
 * The Capability RPCs beyond tools: ReadResource, WatchResource, GetPrompt and Complete, and what
 * Describe says of resources, templates and prompts. A service without resources or prompts
 * answers NOT_FOUND to each, as it would for an unknown name.
 */
import type * as grpc from "@grpc/grpc-js";
import type {
  CompleteRequest,
  CompleteResponse,
  DescribeResponse,
  GetPromptRequest,
  GetPromptResponse,
  ReadResourceRequest,
  ReadResourceResponse,
} from "../../proto/mod.ts";
import { toContentMessage, toResourceContentsMessage } from "./content_blocks.ts";
import type { Logger } from "./logger.ts";
import type { RequestContext, ServiceDefinition } from "./tool.ts";
import { ToolError } from "./tool_error.ts";
import { compileUriTemplate } from "./uri_template.ts";

/** MCP caps a completion at 100 values. */
export const MAX_COMPLETION_VALUES = 100;

/** What the handlers borrow from the Capability server. */
export interface ExtensionHandlerOptions {
  instanceId: string;
  logger: Logger;
  toStatus(error: unknown): grpc.ServiceError;
  abortOnCancel(
    call: { getDeadline(): grpc.Deadline; on(event: "cancelled", listener: () => void): unknown },
  ): AbortController;
}

/** Describe's fields for resources, templates and prompts. */
export function describeExtensions(
  service: ServiceDefinition,
): Pick<DescribeResponse, "resources" | "resourceTemplates" | "prompts"> {
  return {
    resources: (service.resources ?? []).map((resource) => ({
      uri: resource.uri,
      name: resource.name,
      title: resource.title ?? "",
      description: resource.description ?? "",
      mimeType: resource.mimeType ?? "",
      watchable: resource.watch !== undefined,
    })),
    resourceTemplates: (service.resourceTemplates ?? []).map((template) => ({
      uriTemplate: template.uriTemplate,
      name: template.name,
      title: template.title ?? "",
      description: template.description ?? "",
      mimeType: template.mimeType ?? "",
      completable: template.complete !== undefined,
    })),
    prompts: (service.prompts ?? []).map((prompt) => ({
      name: prompt.name,
      title: prompt.title ?? "",
      description: prompt.description ?? "",
      arguments: (prompt.arguments ?? []).map((argument) => ({
        name: argument.name,
        description: argument.description ?? "",
        required: argument.required ?? false,
      })),
      completable: prompt.complete !== undefined,
    })),
  };
}

/** The handlers of ReadResource, WatchResource, GetPrompt and Complete. */
export function createExtensionHandlers(
  service: ServiceDefinition,
  options: ExtensionHandlerOptions,
): grpc.UntypedServiceImplementation {
  const resources = new Map((service.resources ?? []).map((r) => [r.uri, r]));
  const templates = (service.resourceTemplates ?? []).map((definition) => ({
    definition,
    compiled: compileUriTemplate(definition.uriTemplate),
  }));
  const prompts = new Map((service.prompts ?? []).map((p) => [p.name, p]));
  const { instanceId, toStatus, abortOnCancel } = options;

  function context(signal: AbortSignal, requestId: string): RequestContext {
    return { instanceId, requestId, signal };
  }

  async function read(request: ReadResourceRequest, signal: AbortSignal) {
    const ctx = context(signal, request.requestId);
    const resource = resources.get(request.uri);
    if (resource !== undefined) return await resource.read(ctx);
    for (const { definition, compiled } of templates) {
      const variables = compiled.match(request.uri);
      if (variables !== undefined) return await definition.read(request.uri, variables, ctx);
    }
    throw new ToolError("NOT_FOUND", `Unknown resource "${request.uri}"`);
  }

  async function getPrompt(
    request: GetPromptRequest,
    signal: AbortSignal,
  ): Promise<GetPromptResponse> {
    const prompt = prompts.get(request.name);
    if (prompt === undefined) throw new ToolError("NOT_FOUND", `Unknown prompt "${request.name}"`);
    const args = request.arguments ?? {};
    for (const argument of prompt.arguments ?? []) {
      if (argument.required && args[argument.name] === undefined) {
        throw new ToolError(
          "INVALID_ARGUMENT",
          `Prompt "${prompt.name}" needs argument "${argument.name}"`,
        );
      }
    }
    const rendered = await prompt.get(args, context(signal, request.requestId));
    return {
      description: rendered.description ?? "",
      messages: rendered.messages.map((message) => ({
        role: message.role,
        content: toContentMessage(message.content),
      })),
    };
  }

  async function complete(request: CompleteRequest): Promise<CompleteResponse> {
    const completer = request.refType === "prompt"
      ? prompts.get(request.ref)?.complete
      : request.refType === "resource"
      ? templates.find((t) => t.definition.uriTemplate === request.ref)?.definition.complete
      : undefined;
    if (completer === undefined) return { values: [], total: 0, hasMore: false };
    const values = await completer(request.argument, request.value, request.context ?? {});
    return {
      values: values.slice(0, MAX_COMPLETION_VALUES),
      total: values.length,
      hasMore: values.length > MAX_COMPLETION_VALUES,
    };
  }

  function unary<Request, Response>(
    run: (request: Request, signal: AbortSignal) => Promise<Response>,
  ) {
    return (
      call: grpc.ServerUnaryCall<Request, Response>,
      callback: grpc.sendUnaryData<Response>,
    ) => {
      const controller = abortOnCancel(call);
      run(call.request, controller.signal).then(
        (response) => callback(null, response),
        (error) => callback(toStatus(error)),
      ).finally(() => controller.abort());
    };
  }

  return {
    ReadResource: unary(async (request: ReadResourceRequest, signal) => {
      const contents = await read(request, signal);
      return {
        contents: contents.map(toResourceContentsMessage),
        instanceId,
      } as ReadResourceResponse;
    }),
    GetPrompt: unary(getPrompt),
    Complete: unary((request: CompleteRequest) => complete(request)),
    WatchResource(call: grpc.ServerWritableStream<{ uri: string }, { uri: string }>) {
      const uri = call.request.uri;
      const known = resources.get(uri) ??
        templates.find((t) => t.compiled.match(uri) !== undefined);
      if (known === undefined) {
        call.emit("error", toStatus(new ToolError("NOT_FOUND", `Unknown resource "${uri}"`)));
        return;
      }
      const controller = abortOnCancel(call);
      // Ends when the caller cancels; a resource that never changes sends nothing meanwhile.
      resources.get(uri)?.watch?.(controller.signal, () => {
        if (!controller.signal.aborted) call.write({ uri });
      });
    },
  };
}
