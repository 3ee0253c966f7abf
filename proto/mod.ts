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
}

/** Answer to Describe. */
export interface DescribeResponse {
  service: string;
  version: string;
  tools: ToolMessage[];
  instanceId: string;
}

/** A tool call. */
export interface InvokeRequest {
  tool: string;
  argumentsJson: string;
  requestId: string;
}

/** The result of a tool call. */
export interface InvokeResponse {
  resultJson: string;
  instanceId: string;
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
  event?: "progress" | "log" | "result";
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
