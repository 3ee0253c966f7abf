/**
 * Driving a deployed stack from tests and benchmarks: the real ops CLI, `docker` read calls and
 * label updates, and the background `probe` container.
 */

import { type OpsRun, parseRun } from "./e2e_stack.ts";

export type { OpsRun };

const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs `ops/main.ts --json <args>` with `env` (stack name and ports). */
export async function opsRun(
  env: Record<string, string>,
  args: readonly string[],
): Promise<OpsRun> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}ops/main.ts`, "--json", ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return parseRun(output.code, output.stdout, output.stderr);
}

/** A run's exit code and output tails, for assertion messages. */
export function explainRun(run: OpsRun): string {
  return `exit ${run.code}\nstdout: ${run.stdout.slice(-2000)}\nstderr: ${run.stderr.slice(-3000)}`;
}

/** `docker <args>`'s stdout; throws with its stderr when it fails. */
export async function dockerText(...args: string[]): Promise<string> {
  const output = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`docker ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

/** Replicas asked of Swarm for a service (`<stack>_<name>`). */
export async function specReplicas(fullName: string): Promise<number> {
  const text = await dockerText(
    "service",
    "inspect",
    "--format",
    "{{.Spec.Mode.Replicated.Replicas}}",
    fullName,
  );
  return Number(text.trim());
}

/** Sets (value) or removes (null) service labels; a label update restarts no task. */
export async function setLabels(
  fullName: string,
  labels: Record<string, string | null>,
): Promise<void> {
  const args = Object.entries(labels).flatMap(([key, value]) =>
    value === null ? ["--label-rm", key] : ["--label-add", `${key}=${value}`]
  );
  await dockerText("service", "update", "--detach", ...args, fullName);
}

/** The service's labels. */
export async function serviceLabels(fullName: string): Promise<Record<string, string>> {
  const text = await dockerText(
    "service",
    "inspect",
    "--format",
    "{{json .Spec.Labels}}",
    fullName,
  );
  return JSON.parse(text) ?? {};
}

/** A `probe` running in the background. */
export interface BackgroundProbe {
  /** Ends it early (SIGTERM): calls in flight finish and it reports. */
  stop(): void;
  result(): Promise<OpsRun>;
}

/** Starts `ops probe <service> --rate --duration` and resolves once the probe container calls. */
export async function startProbe(
  env: Record<string, string>,
  service: string,
  rate: number,
  seconds: number,
): Promise<BackgroundProbe> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      `${ROOT}ops/main.ts`,
      "--json",
      "probe",
      service,
      "--rate",
      String(rate),
      "--duration",
      String(seconds),
    ],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).arrayBuffer();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  while (!/probe: calling/.test(stderr)) {
    const { value, done } = await reader.read();
    if (done) break;
    stderr += value;
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      stderr += value;
    }
  })();
  return {
    stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
    },
    async result() {
      const [status, out] = await Promise.all([child.status, stdout, rest]);
      return parseRun(status.code, new Uint8Array(out), new TextEncoder().encode(stderr));
    },
  };
}
