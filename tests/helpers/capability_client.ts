/** A small promise-based Capability client for tests, talking to one address directly. */
import * as grpc from "@grpc/grpc-js";
import {
  type CapabilityClient,
  CapabilityClientConstructor,
  type DescribeResponse,
  type InvokeEvent,
  type InvokeResponse,
} from "../../proto/mod.ts";

/** A client of one instance; close it at the end of the test. */
export interface TestClient {
  describe(): Promise<DescribeResponse>;
  invoke(tool: string, args: unknown): Promise<InvokeResponse>;
  invokeStream(tool: string, args: unknown): Promise<InvokeEvent[]>;
  close(): void;
}

/** Connects to `address` (`host:port`). */
export function connect(address: string): TestClient {
  const client: CapabilityClient = new CapabilityClientConstructor(
    address,
    grpc.credentials.createInsecure(),
  );
  const deadline = () => ({ deadline: Date.now() + 15_000 });
  const request = (tool: string, args: unknown) => ({
    tool,
    argumentsJson: typeof args === "string" ? args : JSON.stringify(args),
    requestId: crypto.randomUUID(),
  });
  return {
    describe: () =>
      new Promise((resolve, reject) =>
        client.describe({}, deadline(), (error, value) => error ? reject(error) : resolve(value!))
      ),
    invoke: (tool, args) =>
      new Promise((resolve, reject) =>
        client.invoke(
          request(tool, args),
          new grpc.Metadata(),
          deadline(),
          (error, value) => error ? reject(error) : resolve(value!),
        )
      ),
    invokeStream: (tool, args) =>
      new Promise((resolve, reject) => {
        const events: InvokeEvent[] = [];
        const stream = client.invokeStream(request(tool, args), new grpc.Metadata(), deadline());
        stream.on("data", (event: InvokeEvent) => events.push(event));
        stream.on("error", reject);
        stream.on("end", () => resolve(events));
      }),
    close: () => client.close(),
  };
}

/** The gRPC status name and details of a rejected call. */
export async function grpcFailure(
  call: Promise<unknown>,
): Promise<{ code: string; details: string }> {
  try {
    await call;
  } catch (error) {
    const { code, details } = error as grpc.ServiceError;
    return { code: grpc.status[code], details };
  }
  throw new Error("Expected the call to fail");
}
