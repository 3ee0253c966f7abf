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
import type { RequestContext, ServiceDefinition } from "./tool.ts";
import { ToolError } from "./tool_error.ts";
import { compileUriTemplate } from "./uri_template.ts";

/** MCP caps a completion at 100 values. */
export const MAX_COMPLETION_VALUES = 100;

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

/**
 * ReadResource, WatchResource, GetPrompt and Complete as plain functions of decoded messages, for
 * whatever serves the gRPC methods ({@linkcode grpcJsExtensionHandlers} adapts them to grpc-js).
 */
export interface ExtensionMethods {
  ReadResource(request: ReadResourceRequest, signal: AbortSignal): Promise<ReadResourceResponse>;
  GetPrompt(request: GetPromptRequest, signal: AbortSignal): Promise<GetPromptResponse>;
  Complete(request: CompleteRequest, signal: AbortSignal): Promise<CompleteResponse>;
  /**
   * Sends `{ uri }` each time the resource changes, until `signal` aborts (then it resolves);
   * rejects NOT_FOUND for a URI the service does not serve.
   */
  WatchResource(
    request: { uri: string },
    signal: AbortSignal,
    send: (update: { uri: string }) => void,
  ): Promise<void>;
}

/** The methods of `service`, answering as instance `instanceId`. */
export function createExtensionMethods(
  service: ServiceDefinition,
  instanceId: string,
): ExtensionMethods {
  const resources = new Map((service.resources ?? []).map((r) => [r.uri, r]));
  const templates = (service.resourceTemplates ?? []).map((definition) => ({
    definition,
    compiled: compileUriTemplate(definition.uriTemplate),
  }));
  const prompts = new Map((service.prompts ?? []).map((p) => [p.name, p]));

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

  return {
    async ReadResource(request, signal) {
      const contents = await read(request, signal);
      return { contents: contents.map(toResourceContentsMessage), instanceId };
    },
    async GetPrompt(request, signal) {
      const prompt = prompts.get(request.name);
      if (prompt === undefined) {
        throw new ToolError("NOT_FOUND", `Unknown prompt "${request.name}"`);
      }
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
    },
    async Complete(request) {
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
    },
    WatchResource(request, signal, send) {
      const uri = request.uri;
      const known = resources.get(uri) ??
        templates.find((t) => t.compiled.match(uri) !== undefined);
      if (known === undefined) {
        return Promise.reject(new ToolError("NOT_FOUND", `Unknown resource "${uri}"`));
      }
      // Ends when the caller cancels; a resource that never changes sends nothing meanwhile.
      resources.get(uri)?.watch?.(signal, () => {
        if (!signal.aborted) send({ uri });
      });
      return new Promise((resolve) => {
        if (signal.aborted) return resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
    },
  };
}

/** What the grpc-js adapter borrows from the Capability server. */
export interface GrpcJsAdapterOptions {
  toStatus(error: unknown): grpc.ServiceError;
  abortOnCancel(
    call: { getDeadline(): grpc.Deadline; on(event: "cancelled", listener: () => void): unknown },
  ): AbortController;
}

/** The methods as grpc-js handlers. */
export function grpcJsExtensionHandlers(
  methods: ExtensionMethods,
  options: GrpcJsAdapterOptions,
): grpc.UntypedServiceImplementation {
  const { toStatus, abortOnCancel } = options;
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
    ReadResource: unary(methods.ReadResource),
    GetPrompt: unary(methods.GetPrompt),
    Complete: unary(methods.Complete),
    WatchResource(call: grpc.ServerWritableStream<{ uri: string }, { uri: string }>) {
      const controller = abortOnCancel(call);
      methods.WatchResource(call.request, controller.signal, (update) => call.write(update))
        .then(() => call.end(), (error) => call.emit("error", toStatus(error)));
    },
  };
}
