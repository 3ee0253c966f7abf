/**
 * MCP content blocks and resource contents, as JSON (what MCP carries) and as the contract's
 * messages (what gRPC carries): `toContentMessage` on the service side, `fromContentMessage` on the
 * router side. Images, audio and blobs travel as bytes and become base64 only in MCP. Pure.
 *
 * The router reads what a backend sends as hostile: a block with no body, an unknown kind or a
 * field of the wrong type is an error naming it, never passed on.
 */
import { Buffer } from "node:buffer";
import type { ContentBlockMessage, ResourceContentsMessage } from "../../proto/mod.ts";

/** MCP resource contents: text or a base64 blob. */
export type McpResourceContents =
  & { uri: string; mimeType?: string }
  & ({ text: string; blob?: never } | { blob: string; text?: never });

/** One MCP content block. */
export type McpContentBlock =
  & { annotations?: Record<string, unknown> }
  & (
    | { type: "text"; text: string }
    | { type: "image" | "audio"; data: string; mimeType: string }
    | { type: "resource"; resource: McpResourceContents }
    | {
      type: "resource_link";
      uri: string;
      name: string;
      title?: string;
      description?: string;
      mimeType?: string;
    }
  );

/** Resource contents as the contract's message. */
export function toResourceContentsMessage(contents: McpResourceContents): ResourceContentsMessage {
  const message: ResourceContentsMessage = { uri: contents.uri, mimeType: contents.mimeType ?? "" };
  if (typeof contents.text === "string") message.text = contents.text;
  else message.blob = Buffer.from(contents.blob ?? "", "base64");
  return message;
}

/** A content block as the contract's message. */
export function toContentMessage(block: McpContentBlock): ContentBlockMessage {
  const message: ContentBlockMessage = block.annotations === undefined
    ? {}
    : { annotationsJson: JSON.stringify(block.annotations) };
  switch (block.type) {
    case "text":
      message.text = { text: block.text };
      break;
    case "image":
    case "audio":
      message[block.type] = { data: Buffer.from(block.data, "base64"), mimeType: block.mimeType };
      break;
    case "resource":
      message.resource = toResourceContentsMessage(block.resource);
      break;
    case "resource_link":
      message.resourceLink = {
        uri: block.uri,
        name: block.name,
        title: block.title ?? "",
        description: block.description ?? "",
        mimeType: block.mimeType ?? "",
      };
      break;
  }
  return message;
}

/** A backend's resource contents as MCP JSON; throws a `TypeError` naming what is wrong. */
export function fromResourceContentsMessage(
  message: ResourceContentsMessage,
): McpResourceContents {
  const uri = requireString(message?.uri, "resource uri");
  if (uri === "") throw new TypeError("Resource contents without a uri");
  const mimeType = optionalString(message.mimeType, "resource mimeType");
  const base = mimeType ? { uri, mimeType } : { uri };
  if (message.body === "blob" || (message.body === undefined && message.blob !== undefined)) {
    if (!(message.blob instanceof Uint8Array)) throw new TypeError("Resource blob is not bytes");
    return { ...base, blob: Buffer.from(message.blob).toString("base64") };
  }
  return { ...base, text: requireString(message.text, "resource text") };
}

/** A backend's content block as MCP JSON; throws a `TypeError` naming what is wrong. */
export function fromContentMessage(message: ContentBlockMessage): McpContentBlock {
  if (typeof message !== "object" || message === null) {
    throw new TypeError("Content block is not a message");
  }
  const annotations = parseAnnotations(message.annotationsJson);
  const extra = annotations === undefined ? {} : { annotations };
  const kind = message.block ?? firstSetKind(message);
  switch (kind) {
    case "text":
      return { type: "text", text: requireString(message.text?.text, "text"), ...extra };
    case "image":
    case "audio": {
      const media = message[kind];
      if (!(media?.data instanceof Uint8Array)) throw new TypeError(`The ${kind} has no bytes`);
      const mimeType = requireString(media.mimeType, `${kind} mimeType`);
      if (mimeType === "") throw new TypeError(`The ${kind} has no mimeType`);
      return { type: kind, data: Buffer.from(media.data).toString("base64"), mimeType, ...extra };
    }
    case "resource":
      return {
        type: "resource",
        resource: fromResourceContentsMessage(message.resource!),
        ...extra,
      };
    case "resourceLink": {
      const link = message.resourceLink!;
      const uri = requireString(link.uri, "resource link uri");
      const name = requireString(link.name, "resource link name");
      if (uri === "" || name === "") throw new TypeError("Resource link without a uri or name");
      const block: McpContentBlock = { type: "resource_link", uri, name, ...extra };
      for (const key of ["title", "description", "mimeType"] as const) {
        const value = optionalString(link[key], `resource link ${key}`);
        if (value) block[key] = value;
      }
      return block;
    }
    default:
      throw new TypeError("Content block has no body");
  }
}

function firstSetKind(message: ContentBlockMessage): ContentBlockMessage["block"] {
  for (const kind of ["text", "image", "audio", "resource", "resourceLink"] as const) {
    if (message[kind] !== undefined && message[kind] !== null) return kind;
  }
  return undefined;
}

function parseAnnotations(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined || text === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TypeError("Content annotations are not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("Content annotations are not a JSON object");
  }
  return Object.keys(value).length === 0 ? undefined : value as Record<string, unknown>;
}

function requireString(value: unknown, what: string): string {
  if (typeof value !== "string") throw new TypeError(`The ${what} is not a string`);
  return value;
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  return requireString(value, what);
}
