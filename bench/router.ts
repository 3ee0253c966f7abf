/**
 * `deno task bench router`: tools/call `echo` through one mcp-router, and the same call straight
 * over gRPC to the echo agent, at concurrency 1, 16 and 64, in one run, so the router's overhead
 * is a difference of medians. Writes `bench/results/router-<time>.json` and `router-latest.md`.
 */
import * as grpc from "@grpc/grpc-js";
import { CapabilityClientConstructor } from "../proto/mod.ts";
import { startConsulDev } from "../tests/helpers/consul_dev.ts";
import { startService } from "../tests/helpers/service_process.ts";
import { connectV2, startRouter } from "../tests/router_harness.ts";

const CONCURRENCY = [1, 16, 64];
const CALLS_PER_LEVEL = Number(Deno.env.get("BENCH_CALLS") ?? 3000);
const WARMUP_CALLS = 300;
const MAX_SECONDS_PER_LEVEL = 60;

interface Stats {
  path: string;
  concurrency: number;
  calls: number;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
}

async function measure(
  path: string,
  concurrency: number,
  call: () => Promise<void>,
): Promise<Stats> {
  const latencies: number[] = [];
  let issued = 0;
  const deadline = performance.now() + MAX_SECONDS_PER_LEVEL * 1000;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (issued < CALLS_PER_LEVEL && performance.now() < deadline) {
      issued++;
      const t0 = performance.now();
      await call();
      latencies.push(performance.now() - t0);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    path,
    concurrency,
    calls: latencies.length,
    seconds,
    throughput: latencies.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
  };
}

const consul = await startConsulDev();
const echo = startService("echo-agent", { consulUrl: consul.url, id: "bench-echo-1" });
const router = await startRouter(consul.url, "bench-router", { LOG_LEVEL: "warn" });
const results: Stats[] = [];
try {
  const mcp = await connectV2(router.url);
  for (let i = 0; i < 100; i++) {
    const tools = (await mcp.listTools()).tools;
    if (tools.some((tool) => tool.name === "echo")) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const grpcClient = new CapabilityClientConstructor(
    echo.address,
    grpc.credentials.createInsecure(),
  );
  const direct = () =>
    new Promise<void>((resolve, reject) => {
      grpcClient.invoke(
        { tool: "echo", argumentsJson: '{"message":"bench"}', requestId: "bench" },
        new grpc.Metadata(),
        {},
        (error) => error ? reject(error) : resolve(),
      );
    });
  const viaRouter = async () => {
    const result = await mcp.callTool({ name: "echo", arguments: { message: "bench" } });
    if (result.isError) throw new Error(JSON.stringify(result.content));
  };
  for (let i = 0; i < WARMUP_CALLS; i++) {
    await direct();
    await viaRouter();
  }
  for (const concurrency of CONCURRENCY) {
    results.push(await measure("grpc-direct", concurrency, direct));
    results.push(await measure("mcp-router", concurrency, viaRouter));
  }
  grpcClient.close();
  await mcp.close();
} finally {
  await router.stop();
  await echo.stop();
  await consul.stop();
}

const lines = [
  `# Router benchmark (${new Date().toISOString()})`,
  "",
  `\`deno task bench router\`, ${CALLS_PER_LEVEL} echo calls per level, one router, one echo agent, loopback; MCP client: SDK 2.x (2026-07-28).`,
  "",
  "| path | concurrency | calls/s | p50 ms | p99 ms |",
  "|---|---:|---:|---:|---:|",
  ...results.map((r) =>
    `| ${r.path} | ${r.concurrency} | ${r.throughput.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${
      r.p99Ms.toFixed(2)
    } |`
  ),
  "",
  "| concurrency | added p50 ms | throughput ratio (router / direct) |",
  "|---:|---:|---:|",
  ...CONCURRENCY.map((c) => {
    const d = results.find((r) => r.path === "grpc-direct" && r.concurrency === c)!;
    const m = results.find((r) => r.path === "mcp-router" && r.concurrency === c)!;
    return `| ${c} | ${(m.p50Ms - d.p50Ms).toFixed(2)} | ${
      (m.throughput / d.throughput).toFixed(2)
    } |`;
  }),
  "",
];
const stamp = new Date().toISOString().replaceAll(":", "-").replace(/\..*/, "");
const dir = new URL("./results/", import.meta.url);
await Deno.mkdir(dir, { recursive: true });
await Deno.writeTextFile(new URL(`router-${stamp}.json`, dir), JSON.stringify(results, null, 2));
await Deno.writeTextFile(new URL("router-latest.md", dir), lines.join("\n"));
console.log(lines.join("\n"));
