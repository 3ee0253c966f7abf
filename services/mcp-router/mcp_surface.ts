/**
 * The MCP methods beyond tools, as one router serves them from every service: resources (list,
 * templates, read, subscribe, unsubscribe), prompts (list, get), completion and `logging/setLevel`;
 * and the capabilities that say which of them are served. Registered on each SDK server instance the
 * endpoint builds.
 */
import {
  ProtocolError,
  ProtocolErrorCode,
  type Server,
  type ServerCapabilities,
} from "@modelcontextprotocol/server";
import type { GetPromptResponse } from "../../proto/mod.ts";
import {
  fromContentMessage,
  fromResourceContentsMessage,
  type McpContentBlock,
} from "../runtime/content_blocks.ts";
import { describeFailure } from "./tool_gateway.ts";
import type { BackendRpc } from "./backend_rpc.ts";
import type { Catalog } from "./catalog.ts";
import { type ResourceSubscriptions, SubscriptionError } from "./resource_subscriptions.ts";
import { isLogLevel, type SessionLogLevels } from "./session_log_levels.ts";
import { resolveResource } from "./surface_catalog.ts";

/** What the handlers use. */
export interface SurfaceDependencies {
  catalog: () => Catalog;
  rpc: BackendRpc;
  subscriptions: ResourceSubscriptions;
  logLevels: SessionLogLevels;
}

/** Longest error text from a backend passed to a client. */
const MAX_ERROR_TEXT = 1024;

/** The capabilities of a server built on `catalog`: only what some service serves. */
export function surfaceCapabilities(catalog: Catalog): ServerCapabilities {
  const { surface } = catalog;
  const capabilities: ServerCapabilities = {
    tools: { listChanged: true },
    // Every tool call may carry log messages (the contract's log events), so logging is served.
    logging: {},
  };
  if (surface.resources.length > 0 || surface.templates.length > 0) {
    capabilities.resources = { subscribe: true, listChanged: true };
  }
  if (surface.prompts.length > 0) capabilities.prompts = { listChanged: true };
  if (
    surface.prompts.some((p) => p.completable) || surface.templates.some((t) => t.completable)
  ) {
    capabilities.completions = {};
  }
  return capabilities;
}

/**
 * Registers the handlers of what `capabilities` declares on `server`. `sid` is the 2025 session, if
 * any: subscriptions and log levels belong to one.
 */
export function registerSurface(
  server: Server,
  capabilities: ServerCapabilities,
  dependencies: SurfaceDependencies,
  sid: string | undefined,
): void {
  const { catalog, rpc, subscriptions, logLevels } = dependencies;
  if (capabilities.logging) {
    server.setRequestHandler("logging/setLevel", (request) => {
      const level = request.params.level;
      if (!isLogLevel(level)) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown log level "${level}"`);
      }
      if (sid !== undefined) logLevels.set(sid, level);
      return {};
    });
  }
  if (capabilities.resources) {
    server.setRequestHandler("resources/list", () => ({
      resources: catalog().surface.resources.map((resource) =>
        withOptional({ uri: resource.uri, name: resource.name }, {
          title: resource.title,
          description: resource.description,
          mimeType: resource.mimeType,
        })
      ),
    }));
    server.setRequestHandler("resources/templates/list", () => ({
      resourceTemplates: catalog().surface.templates.map((template) =>
        withOptional({ uriTemplate: template.uriTemplate, name: template.name }, {
          title: template.title,
          description: template.description,
          mimeType: template.mimeType,
        })
      ),
    }));
    server.setRequestHandler("resources/read", async (request, ctx) => {
      const uri = request.params.uri;
      const service = resolveResource(catalog().surface, uri);
      if (service === undefined) {
        throw new ProtocolError(ProtocolErrorCode.ResourceNotFound, `Unknown resource "${uri}"`);
      }
      const answer = await backend(
        () =>
          rpc.readResource(service, { uri, requestId: String(ctx.mcpReq.id) }, {
            signal: ctx.mcpReq.signal,
          }),
        ProtocolErrorCode.ResourceNotFound,
      );
      return { contents: convert(() => answer.contents.map(fromResourceContentsMessage)) };
    });
    server.setRequestHandler("resources/subscribe", (request) => {
      if (sid === undefined) {
        throw new ProtocolError(
          ProtocolErrorCode.InvalidRequest,
          "resources/subscribe needs a session; 2026-07-28 clients use subscriptions/listen",
        );
      }
      try {
        subscriptions.subscribe(sid, request.params.uri);
      } catch (error) {
        if (!(error instanceof SubscriptionError)) throw error;
        throw new ProtocolError(
          error.code === "unknown"
            ? ProtocolErrorCode.ResourceNotFound
            : ProtocolErrorCode.InvalidRequest,
          error.message,
        );
      }
      return {};
    });
    server.setRequestHandler("resources/unsubscribe", (request) => {
      if (sid !== undefined) subscriptions.unsubscribe(sid, request.params.uri);
      return {};
    });
  }
  if (capabilities.prompts) {
    server.setRequestHandler("prompts/list", () => ({
      prompts: catalog().surface.prompts.map((prompt) =>
        withOptional({ name: prompt.name }, {
          title: prompt.title,
          description: prompt.description,
          arguments: prompt.arguments.length === 0
            ? ""
            : prompt.arguments.map((argument) =>
              withOptional({ name: argument.name, required: argument.required }, {
                description: argument.description,
              })
            ),
        })
      ),
    }));
    server.setRequestHandler("prompts/get", async (request, ctx) => {
      const name = request.params.name;
      const prompt = catalog().surface.promptsByName.get(name);
      if (prompt === undefined) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown prompt "${name}"`);
      }
      const args = request.params.arguments ?? {};
      const answer: GetPromptResponse = await backend(
        () =>
          rpc.getPrompt(prompt.service, {
            name: prompt.backendName,
            arguments: args,
            requestId: String(ctx.mcpReq.id),
          }, { signal: ctx.mcpReq.signal }),
        ProtocolErrorCode.InvalidParams,
      );
      const messages = convert(() =>
        answer.messages.map((message) => {
          if (message.role !== "user" && message.role !== "assistant") {
            throw new TypeError(`Prompt message role "${String(message.role).slice(0, 32)}"`);
          }
          return {
            role: message.role as "user" | "assistant",
            content: fromContentMessage(message.content!) as Exclude<
              McpContentBlock,
              { type: "resource_link" }
            >,
          };
        })
      );
      return withOptional({ messages }, { description: answer.description });
    });
  }
  if (capabilities.completions) {
    server.setRequestHandler("completion/complete", async (request, ctx) => {
      const { ref, argument, context } = request.params;
      const surface = catalog().surface;
      let target: { service: string; refType: string; ref: string } | undefined;
      if (ref.type === "ref/prompt") {
        const prompt = surface.promptsByName.get(ref.name);
        if (prompt) {
          target = { service: prompt.service, refType: "prompt", ref: prompt.backendName };
        }
      } else if (ref.type === "ref/resource") {
        const template = surface.templates.find((t) => t.uriTemplate === ref.uri);
        if (template) target = { service: template.service, refType: "resource", ref: ref.uri };
      }
      if (target === undefined) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, "Unknown prompt or template");
      }
      const answer = await backend(
        () =>
          rpc.complete(target.service, {
            refType: target.refType,
            ref: target.ref,
            argument: argument.name,
            value: argument.value,
            context: context?.arguments ?? {},
          }, { signal: ctx.mcpReq.signal }),
        ProtocolErrorCode.InvalidParams,
      );
      const values = Array.isArray(answer.values)
        ? answer.values.filter((v) => typeof v === "string").slice(0, 100)
        : [];
      return {
        completion: {
          values,
          ...(answer.total ? { total: answer.total } : {}),
          hasMore: answer.hasMore === true,
        },
      };
    });
  }
}

/** Runs a backend call; NOT_FOUND and INVALID_ARGUMENT become `notFound`, others InternalError. */
async function backend<T>(call: () => Promise<T>, notFound: ProtocolErrorCode): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const { code, message } = describeFailure(error);
    const text = message.slice(0, MAX_ERROR_TEXT);
    if (code === "NOT_FOUND" || code === "INVALID_ARGUMENT") {
      throw new ProtocolError(notFound, text);
    }
    throw new ProtocolError(ProtocolErrorCode.InternalError, text);
  }
}

/** A backend's answer that cannot be carried is an InternalError naming why. */
function convert<T>(build: () => T): T {
  try {
    return build();
  } catch (error) {
    throw new ProtocolError(
      ProtocolErrorCode.InternalError,
      `The backend sent an invalid answer: ${(error as Error).message}`,
    );
  }
}

/** `base` plus the entries of `optional` that are not empty strings. */
function withOptional<T extends Record<string, unknown>>(
  base: T,
  optional: Record<string, unknown>,
): T & Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(optional)) if (value !== "") result[key] = value;
  return result as T & Record<string, unknown>;
}
