/**
 * Runs the official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned here and in
 * deno.json) against a server URL and reads what it saved: one `checks.json` per scenario.
 */
import { fileURLToPath } from "node:url";

/** The pinned suite. */
export const CONFORMANCE_PACKAGE = "npm:@modelcontextprotocol/conformance@0.1.16";

/** Scenarios whose checks cannot apply through the router, and why (named in the README too). */
export const NOT_APPLICABLE: Readonly<Record<string, string>> = {
  "server-sse-polling": "SEP-1699 resumption (priming events, Last-Event-ID replay) needs an " +
    "event store; the router keeps none (sessions are stateless tokens any replica serves), so " +
    "test_reconnection answers with plain JSON and the suite reports its checks not applicable",
};

/** One check of a scenario. */
export interface ConformanceCheck {
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED";
  errorMessage?: string;
}

/** What one scenario found. */
export interface ScenarioResult {
  scenario: string;
  checks: ConformanceCheck[];
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

async function suite(args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CONFORMANCE_PACKAGE, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  if (!output.success && !text.includes("SUMMARY")) {
    throw new Error(`The conformance suite failed to run (${output.code}):\n${text.slice(-4000)}`);
  }
  return text;
}

/** The server scenarios of the pinned suite (active and pending). */
export async function serverScenarios(): Promise<string[]> {
  const text = await suite(["list", "--server"]);
  return [...text.matchAll(/^\s+- ([a-z0-9-]+) \[/gm)].map((match) => match[1]);
}

/** Runs every server scenario (`--suite all`) against `url`; one result per scenario run. */
export async function runConformance(url: URL | string): Promise<ScenarioResult[]> {
  const dir = await Deno.makeTempDir({ prefix: "conformance-" });
  try {
    await suite(["server", "--url", String(url), "--suite", "all", "-o", dir]);
    const results: ScenarioResult[] = [];
    for await (const entry of Deno.readDir(dir)) {
      const found = /^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/.exec(entry.name);
      if (!entry.isDirectory || found === null) continue;
      const checks = JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}/checks.json`));
      results.push({ scenario: found[1], checks });
    }
    return results.sort((a, b) => a.scenario < b.scenario ? -1 : 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Why `result` does not pass, or `undefined` when it does: no FAILURE, and at least one SUCCESS
 * unless the scenario is {@linkcode NOT_APPLICABLE} (then no SUCCESS is possible, and none is
 * claimed).
 */
export function scenarioProblem(result: ScenarioResult): string | undefined {
  const failed = result.checks.filter((check) => check.status === "FAILURE");
  if (failed.length > 0) {
    return failed.map((check) => `${check.id}: ${check.errorMessage ?? "failed"}`).join("; ");
  }
  if (result.scenario in NOT_APPLICABLE) return undefined;
  if (!result.checks.some((check) => check.status === "SUCCESS")) return "no check succeeded";
  return undefined;
}

/**
 * Runs the whole suite against `url` and throws naming every scenario that did not pass; resolves
 * with the number of scenarios that passed. For the Swarm e2e: call it with HAProxy's MCP URL once
 * the stack runs conformance-server (`deploy --with conformance-server`).
 */
export async function assertConformance(url: URL | string): Promise<number> {
  const [expected, results] = await Promise.all([serverScenarios(), runConformance(url)]);
  const problems: string[] = [];
  for (const scenario of expected) {
    const result = results.find((r) => r.scenario === scenario);
    const problem = result === undefined ? "did not run" : scenarioProblem(result);
    if (problem !== undefined) problems.push(`${scenario}: ${problem}`);
  }
  if (expected.length === 0) problems.push("the suite listed no server scenario");
  if (problems.length > 0) {
    throw new Error(
      `${problems.length} of ${expected.length} conformance scenarios failed:\n  ${
        problems.join("\n  ")
      }`,
    );
  }
  return expected.length;
}

/** What {@linkcode conformanceE2eStep} needs of the Swarm e2e stack (`E2eStack` fits). */
export interface ConformanceStack {
  readonly mcpUrl: string;
  ops(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * The Swarm e2e step (the lead's): deploys `conformance-server` into the running stack
 * (`deploy --with conformance-server --no-auth`), runs every scenario through HAProxy, then deploys
 * without it again, with auth (the stack is pruned). With more than one router, HAProxy needs session affinity for the
 * sampling, elicitation and subscription scenarios: `lb` with `LB_BALANCE=hdr(mcp-session-id)`
 * (`services/mcp-router/README.md`, "Limits").
 *
 *   await t.step("MCP conformance through HAProxy", () => conformanceE2eStep(stack));
 */
export async function conformanceE2eStep(stack: ConformanceStack): Promise<void> {
  // The suite's CLI sends no credentials (it has no option for them): the routers run without
  // auth for this step, an explicit `--no-auth` that `status` must flag, and get it back after.
  const deployed = await stack.ops("deploy", "--with", "conformance-server", "--no-auth");
  if (deployed.code !== 0) {
    throw new Error(
      `deploy --with conformance-server --no-auth failed (${deployed.code}): ${deployed.stderr}`,
    );
  }
  const status = await stack.ops("status");
  const flagged = (() => {
    try {
      return JSON.parse(status.stdout).auth?.mcp === "none";
    } catch {
      return false;
    }
  })();
  if (!flagged) {
    throw new Error(`status does not flag the --no-auth deploy: ${status.stdout.slice(0, 2000)}`);
  }
  const outcome = await assertConformance(stack.mcpUrl).then(() => undefined, (error) => error);
  const restored = await stack.ops("deploy");
  if (outcome !== undefined) throw outcome;
  if (restored.code !== 0) {
    throw new Error(`deploy without conformance-server failed: ${restored.stderr}`);
  }
}
