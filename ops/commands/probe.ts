/** `probe <service>`: calls a service's tool from a container on the stack's network, checks answers. */
import type { Command } from "commander";
import { OpsError, UsageError } from "../errors.ts";
import { type PlatformService, resolveService } from "../plan/services.ts";
import type { CallSummary } from "../plan/stats.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { giveFileTo, processUser, removeFile, writeTempSecretFile } from "../adapters/files.ts";
import { readConsulSecrets } from "./_consul_secrets.ts";
import { readMcpToken } from "../adapters/mcp_token.ts";

/** Where the probe container finds its Consul token. */
const PROBE_TOKEN_TARGET = "/run/secrets/consul-token";
/** The user of the services image (services/Dockerfile). */
const IMAGE_UID = 10001;

/** Where the router probe finds the MCP bearer token. */
const MCP_TOKEN_TARGET = "/run/secrets/mcp-token";

/** Options of `probe`. */
export interface ProbeFlags {
  rate: string;
  duration: string;
  /** MCP sessions the router probe keeps open (2025-era clients). */
  sessions?: string;
}

/** What the probe container reports. */
export interface ProbeReport extends CallSummary {
  service: string;
  tool: string;
  rate: number;
  durationS: number;
  /** Answers per instance ID. */
  instances: Record<string, number>;
  /** Failures per message. */
  errors: Record<string, number>;
  /** The router probe: sessions opened and lost, answers per router, tools called. */
  sessions?: { opened: number; lost: number; stateless: number };
  routers?: Record<string, number>;
  tools?: Record<string, number>;
  retries?: number;
}

function bounded(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`Invalid ${name} "${text}": expected a number from ${min} to ${max}`);
  }
  return value;
}

/** Runs `probe`; exits 1 (by throwing after printing the report) when any call failed. */
export async function probeCommand(
  context: CommandContext,
  name: string,
  flags: ProbeFlags,
): Promise<ProbeReport> {
  const service = resolveService(name, context.services);
  if (!service.entrypoint) throw new UsageError(`Service "${service.name}" has no tool to probe`);
  const rate = bounded("rate", flags.rate, 1, 500);
  const duration = bounded("duration", flags.duration, 1, 600);
  const sessions = bounded("sessions", flags.sessions ?? "4", 0, 64);
  const isRouter = service.name === "mcp-router";
  // The routers speak MCP: the probe uses the official SDK clients with live sessions.
  const programArgs = isRouter
    ? [
      "/app/ops/probe/mcp_main.ts",
      "--consul",
      "http://consul:8500",
      "--sessions",
      String(sessions),
    ]
    : ["/app/ops/probe/main.ts", "--service", service.consulName];
  const image = `${context.config.imagePrefix}/services:latest`;
  if (!(await context.docker.imageId(image))) {
    throw new OpsError(`Image "${image}" is missing: run "deploy" or "build" first`, {
      code: "NO_IMAGE",
    });
  }
  context.progress.log(`probing ${service.consulName} at ${rate}/s for ${duration}s`);
  // A `docker run` container cannot mount Swarm secrets: the probe's read-only token (derived
  // from the management token, as deploy made it) goes in as a file only this user may read,
  // removed when the probe ends. Without the token file (a stack without ACLs) it runs without.
  const consulSecrets = await readConsulSecrets(context);
  const tokenFile = consulSecrets &&
    await writeTempSecretFile("probe-token-", `${consulSecrets.tokens.probe}\n`);
  // The routers want the client token `deploy` keeps (none on a stack deployed with --no-auth);
  // it goes in the same way, as a file removed when the probe ends.
  const mcpToken = isRouter
    ? await readMcpToken(context.config.root, { env: context.env, stack: context.config.stack })
    : undefined;
  const mcpTokenFile = mcpToken && await writeTempSecretFile("probe-mcp-token-", `${mcpToken}\n`);
  const files: Record<string, string> = {
    ...(tokenFile ? { [PROBE_TOKEN_TARGET]: tokenFile } : {}),
    ...(mcpTokenFile ? { [MCP_TOKEN_TARGET]: mcpTokenFile } : {}),
  };
  if (mcpTokenFile) programArgs.push("--token-file", MCP_TOKEN_TARGET);
  // The image runs as uid 10001: the files are handed to it, or (this process is not root) the
  // probe runs as this process's user, who owns them.
  let handedOver = true;
  for (const file of Object.values(files)) {
    handedOver = handedOver && await giveFileTo(file, IMAGE_UID, IMAGE_UID);
  }
  const user = handedOver ? undefined : processUser();
  try {
    return await runProbe(context, service, { image, programArgs, rate, duration, files, user });
  } finally {
    if (tokenFile) await removeFile(tokenFile);
    if (mcpTokenFile) await removeFile(mcpTokenFile);
  }
}

async function runProbe(
  context: CommandContext,
  service: PlatformService,
  options: {
    image: string;
    programArgs: string[];
    rate: number;
    duration: number;
    /** Host files mounted into the probe container, by path there. */
    files: Record<string, string>;
    /** `uid:gid` to run as, when the files could not be handed to the image's user. */
    user: string | undefined;
  },
): Promise<ProbeReport> {
  const { image, programArgs, rate, duration, files } = options;
  const run = await context.docker.run({
    image,
    ...(options.user ? { user: options.user } : {}),
    unprivileged: true,
    network: `${context.config.stack}_platform`,
    labels: { "agent-platform.probe": context.config.stack },
    ...(Object.keys(files).length > 0 ? { files } : {}),
    ...(PROBE_TOKEN_TARGET in files ? { env: { CONSUL_HTTP_TOKEN_FILE: PROBE_TOKEN_TARGET } } : {}),
    // On an overlay network the address of a killed instance swallows SYNs: with Linux's default
    // of 6 retries a connection attempt hangs for about two minutes and the calls queued on it
    // time out. One retry fails it in about 3 s, so they are retried on another instance.
    sysctls: { "net.ipv4.tcp_syn_retries": "1" },
    args: [
      ...programArgs,
      "--rate",
      String(rate),
      "--duration",
      String(duration),
    ],
    onStderrLine: (line) => {
      if (line.startsWith("probe:")) context.progress.log(line);
    },
  });
  const last = run.stdout.trim().split("\n").pop() ?? "";
  let report: ProbeReport;
  try {
    report = JSON.parse(last) as ProbeReport;
  } catch {
    throw new OpsError(
      `The probe of "${service.name}" gave no report (exit code ${run.code}): ${
        (run.stderr || run.stdout).trim().split("\n").slice(-3).join("; ")
      }`,
      { code: "PROBE_FAILED" },
    );
  }
  const served = report.routers ?? report.instances ?? {};
  const instances = Object.entries(served).map(([id, count]) => `  ${id}: ${count}`);
  const what = report.tools ? Object.keys(report.tools).sort().join(", ") : report.tool;
  context.result(
    report,
    [
      `${report.calls} calls to ${what} on ${service.consulName}, ${report.failures} failed`,
      `latency ms: p50 ${report.latencyMs.p50}, p90 ${report.latencyMs.p90}, p99 ${report.latencyMs.p99}, max ${report.latencyMs.max}`,
      ...(report.sessions
        ? [
          `sessions: ${report.sessions.opened} opened, ${report.sessions.lost} lost; ` +
          `${report.sessions.stateless} stateless client(s); ${
            report.retries ?? 0
          } connect retries`,
        ]
        : []),
      report.routers ? "HTTP requests per router:" : "instances:",
      ...instances,
      ...Object.entries(report.errors).map(([message, count]) => `! ${count} x ${message}`),
    ].join("\n"),
  );
  if (report.failures > 0 || (report.sessions?.lost ?? 0) > 0) {
    throw new OpsError(
      `${report.failures} of ${report.calls} probe calls failed` +
        (report.sessions ? `, ${report.sessions.lost} session(s) lost` : ""),
      { code: "PROBE_FAILURES" },
    );
  }
  return report;
}

/** Registers `probe`. */
export function registerProbe(program: Command, run: CommandRunner): void {
  program.command("probe")
    .description("call a service's tool at a fixed rate from the stack's network and check answers")
    .argument("<service>", "echo, weather, itinerary, router or a full name")
    .option("--rate <calls/s>", "calls per second (1..500)", "20")
    .option("--duration <seconds>", "how long (1..600)", "10")
    .option("--sessions <n>", "router: MCP sessions kept open (0..64)", "4")
    .action((name: string, flags: ProbeFlags) =>
      run(async (context) => {
        await probeCommand(context, name, flags);
      })
    );
}
