import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { decodeHealthStatus, grpcHealthStatus } from "./health_probe.ts";

Deno.test("decodeHealthStatus() reads the status field of one framed message", async (t) => {
  await t.step(
    "SERVING",
    () => assert.equal(decodeHealthStatus(new Uint8Array([0, 0, 0, 0, 2, 8, 1])), 1),
  );
  await t.step("NOT_SERVING", () => {
    assert.equal(decodeHealthStatus(new Uint8Array([0, 0, 0, 0, 2, 8, 2])), 2);
  });
  await t.step("UNKNOWN is an empty message", () => {
    assert.equal(decodeHealthStatus(new Uint8Array([0, 0, 0, 0, 0])), 0);
  });
  await t.step("no message is an error", () => {
    assert.throws(() => decodeHealthStatus(new Uint8Array([])), /empty gRPC answer/);
  });
});

Deno.test("grpcHealthStatus() asks a real grpc-js health service", async () => {
  const server = new grpc.Server();
  const health = new HealthImplementation({ "": "SERVING" });
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error) reject(error);
      else resolve(bound);
    })
  );
  try {
    assert.equal(await grpcHealthStatus("127.0.0.1", port), 1);
    health.setStatus("", "NOT_SERVING");
    assert.equal(await grpcHealthStatus("127.0.0.1", port), 2);
  } finally {
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
});

Deno.test("grpcHealthStatus() fails when nothing listens", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(grpcHealthStatus("127.0.0.1", port, 1000));
});
