/**
 * Loads `platform.proto` once and exposes the `platform.v1.Capability` service definition, a client
 * constructor and the TypeScript shapes of its messages.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

/** Path of the service contract. */
export const PROTO_PATH = fileURLToPath(new URL("./platform.proto", import.meta.url));

/** One tool as a service describes it. */
export interface ToolMessage {
  name: string;
  title: string;
  description: string;
  inputSchemaJson: string;
  outputSchemaJson: string;
  annotationsJson: string;
  /** How the router calls it; `UNARY` when absent (older services). */
  mode?: InvokeMode;
}

/** How the router calls a tool. */
export type InvokeMode = "UNARY" | "STREAM" | "SESSION";

/** A resource a service lists. */
export interface ResourceMessage {
  uri: string;
  name: string;
  title: string;
  description: string;
  mimeType: string;
  watchable: boolean;
}

/** A family of resources under an RFC 6570 level-1 template. */
export interface ResourceTemplateMessage {
  uriTemplate: string;
  name: string;
  title: string;
  description: string;
  mimeType: string;
  completable: boolean;
}

/** One argument of a prompt. */
export interface PromptArgumentMessage {
  name: string;
  description: string;
  required: boolean;
}

/** A prompt a service offers. */
export interface PromptMessageInfo {
  name: string;
  title: string;
  description: string;
  arguments: PromptArgumentMessage[];
  completable: boolean;
}

/** Answer to Describe. */
export interface DescribeResponse {
  service: string;
  version: string;
  tools: ToolMessage[];
  instanceId: string;
  /** Absent from older services. */
  resources?: ResourceMessage[];
  resourceTemplates?: ResourceTemplateMessage[];
  prompts?: PromptMessageInfo[];
}

/** A tool call. */
export interface InvokeRequest {
  tool: string;
  argumentsJson: string;
  requestId: string;
}

/** The body of a resource: `text` or `blob`. */
export interface ResourceContentsMessage {
  uri: string;
  mimeType: string;
  text?: string;
  blob?: Uint8Array;
  body?: "text" | "blob";
}

/** One MCP content block: exactly one of the block fields is set. */
export interface ContentBlockMessage {
  text?: { text: string };
  image?: { data: Uint8Array; mimeType: string };
  audio?: { data: Uint8Array; mimeType: string };
  resource?: ResourceContentsMessage;
  resourceLink?: {
    uri: string;
    name: string;
    title: string;
    description: string;
    mimeType: string;
  };
  annotationsJson?: string;
  block?: "text" | "image" | "audio" | "resource" | "resourceLink";
}

/** The result of a tool call. */
export interface InvokeResponse {
  resultJson: string;
  instanceId: string;
  /** MCP content blocks; when non-empty, `resultJson` is ignored. */
  content?: ContentBlockMessage[];
  structuredContentJson?: string;
  isError?: boolean;
}

/** A log message of a running call. */
export interface LogEventMessage {
  level: string;
  logger: string;
  dataJson: string;
}

/** A request of a tool to the client. */
export interface ClientRequestMessage {
  id: number;
  method: string;
  paramsJson: string;
}

/** The client's answer to a {@linkcode ClientRequestMessage}. */
export interface ClientAnswerMessage {
  id: number;
  resultJson: string;
  errorCode: number;
  errorMessage: string;
}

/** What a caller sends on InvokeSession: the call first, then answers. */
export interface SessionMessage {
  call?: InvokeRequest;
  answer?: ClientAnswerMessage;
  message?: "call" | "answer";
}

/** ReadResource's request. */
export interface ReadResourceRequest {
  uri: string;
  requestId: string;
}

/** ReadResource's answer. */
export interface ReadResourceResponse {
  contents: ResourceContentsMessage[];
  instanceId: string;
}

/** One message of a rendered prompt. */
export interface PromptMessage {
  role: string;
  content: ContentBlockMessage | null;
}

/** GetPrompt's request. */
export interface GetPromptRequest {
  name: string;
  arguments: Record<string, string>;
  requestId: string;
}

/** GetPrompt's answer. */
export interface GetPromptResponse {
  description: string;
  messages: PromptMessage[];
}

/** Complete's request. */
export interface CompleteRequest {
  refType: string;
  ref: string;
  argument: string;
  value: string;
  context: Record<string, string>;
}

/** Complete's answer. */
export interface CompleteResponse {
  values: string[];
  total: number;
  hasMore: boolean;
}

/** Progress of a streamed tool call. */
export interface ProgressMessage {
  progress: number;
  total: number;
  message: string;
}

/** One event of InvokeStream: exactly one field is set. */
export interface InvokeEvent {
  progress?: ProgressMessage;
  log?: string;
  result?: InvokeResponse;
  logEvent?: LogEventMessage;
  request?: ClientRequestMessage;
  event?: "progress" | "log" | "result" | "logEvent" | "request";
}

/** A typed grpc-js client of `platform.v1.Capability`. */
export interface CapabilityClient extends grpc.Client {
  describe(
    request: Record<string, never>,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<DescribeResponse>,
  ): grpc.ClientUnaryCall;
  invoke(
    request: InvokeRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<InvokeResponse>,
  ): grpc.ClientUnaryCall;
  invokeStream(
    request: InvokeRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
  ): grpc.ClientReadableStream<InvokeEvent>;
  invokeSession(
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
  ): grpc.ClientDuplexStream<SessionMessage, InvokeEvent>;
  readResource(
    request: ReadResourceRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<ReadResourceResponse>,
  ): grpc.ClientUnaryCall;
  watchResource(
    request: { uri: string },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
  ): grpc.ClientReadableStream<{ uri: string }>;
  getPrompt(
    request: GetPromptRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<GetPromptResponse>,
  ): grpc.ClientUnaryCall;
  complete(
    request: CompleteRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<CompleteResponse>,
  ): grpc.ClientUnaryCall;
}

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

const packageDefinition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as {
  platform: { v1: { Capability: grpc.ServiceClientConstructor } };
};

/** The constructor of Capability clients. */
export const CapabilityClientConstructor = loaded.platform.v1.Capability as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => CapabilityClient;

/** The service definition to add to a grpc-js server. */
export const CAPABILITY_SERVICE: grpc.ServiceDefinition = loaded.platform.v1.Capability.service;

/** A method of `platform.v1.Capability` as raw bytes: its HTTP/2 path and message codecs. */
export interface CapabilityMethod<Request, Response> {
  /** `/platform.v1.Capability/<Method>` */
  readonly path: string;
  serialize(request: Request): Uint8Array;
  deserialize(bytes: Uint8Array): Response;
}

function capabilityMethod<Request, Response>(name: string): CapabilityMethod<Request, Response> {
  const definition = (packageDefinition["platform.v1.Capability"] as grpc.ServiceDefinition)[name];
  return {
    path: definition.path,
    serialize: (request) => definition.requestSerialize(request),
    // proto-loader's deserializer takes a Buffer, but reads it only as bytes.
    deserialize: (bytes) => definition.responseDeserialize(bytes as Buffer) as Response,
  };
}

/** `Describe`, for clients that frame gRPC themselves. */
export const DESCRIBE_METHOD: CapabilityMethod<Record<string, never>, DescribeResponse> =
  capabilityMethod("Describe");

/** `Invoke`, for clients that frame gRPC themselves. */
export const INVOKE_METHOD: CapabilityMethod<InvokeRequest, InvokeResponse> = capabilityMethod(
  "Invoke",
);

/** `InvokeStream`, for clients that frame gRPC themselves. */
export const INVOKE_STREAM_METHOD: CapabilityMethod<InvokeRequest, InvokeEvent> = capabilityMethod(
  "InvokeStream",
);

/** A method of `platform.v1.Capability` as a server sees it: its path and message codecs. */
export interface CapabilityServerMethod<Request, Response> {
  /** `/platform.v1.Capability/<Method>` */
  readonly path: string;
  deserialize(bytes: Uint8Array): Request;
  serialize(response: Response): Uint8Array;
}

function capabilityServerMethod<Request, Response>(
  name: string,
): CapabilityServerMethod<Request, Response> {
  const definition = (packageDefinition["platform.v1.Capability"] as grpc.ServiceDefinition)[name];
  return {
    path: definition.path,
    deserialize: (bytes) => definition.requestDeserialize(bytes as Buffer) as Request,
    serialize: (response) => definition.responseSerialize(response),
  };
}

/** The server side of `platform.v1.Capability`, for servers that frame gRPC themselves. */
export const CAPABILITY_SERVER_METHODS = {
  describe: capabilityServerMethod<Record<string, never>, DescribeResponse>("Describe"),
  invoke: capabilityServerMethod<InvokeRequest, InvokeResponse>("Invoke"),
  invokeStream: capabilityServerMethod<InvokeRequest, InvokeEvent>("InvokeStream"),
  invokeSession: capabilityServerMethod<SessionMessage, InvokeEvent>("InvokeSession"),
  readResource: capabilityServerMethod<ReadResourceRequest, ReadResourceResponse>("ReadResource"),
  watchResource: capabilityServerMethod<{ uri: string }, { uri: string }>("WatchResource"),
  getPrompt: capabilityServerMethod<GetPromptRequest, GetPromptResponse>("GetPrompt"),
  complete: capabilityServerMethod<CompleteRequest, CompleteResponse>("Complete"),
} as const;
