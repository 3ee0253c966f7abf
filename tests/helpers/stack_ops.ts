/**
 * Driving a deployed stack from tests and benchmarks: the real ops CLI, `docker` calls, service
 * labels, and callers (probes) in the background.
 */

/** One run of the ops CLI. */
export interface OpsRun {
  code: number;
  stdout: string;
  stderr: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** A caller (probe) running in the background. */
export interface Caller {
  /** Ends it early (SIGTERM): calls in flight finish and it reports. */
  stop(): void;
  /** Resolves when its stderr (progress) matches `pattern`; rejects if it ends first. */
  printed(pattern: RegExp): Promise<void>;
  result(): Promise<OpsRun>;
}

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

/** Replicas asked of Swarm for a service (`<stack>_<name>`). */
export async function specReplicas(fullName: string): Promise<number> {
  const text = await docker(
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
  await docker("service", "update", "--detach", ...args, fullName);
}

/** The service's labels. */
export async function serviceLabels(fullName: string): Promise<Record<string, string>> {
  const text = await docker(
    "service",
    "inspect",
    "--format",
    "{{json .Spec.Labels}}",
    fullName,
  );
  return JSON.parse(text) ?? {};
}

/** `ops probe <service> --rate --duration` in the background; resolves once it calls. */
export function startProbe(
  env: Record<string, string>,
  service: string,
  rate: number,
  seconds: number,
): Promise<Caller> {
  return startBackground(env, [
    `${ROOT}ops/main.ts`,
    "--json",
    "probe",
    service,
    "--rate",
    String(rate),
    "--duration",
    String(seconds),
  ]);
}

/** `deno run --allow-all <args>` in the background (a probe); resolves once it prints that it calls. */
export async function startBackground(
  env: Record<string, string>,
  args: readonly string[],
): Promise<Caller> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", ...args],
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
  const waiters: { pattern: RegExp; resolve(): void; reject(error: Error): void }[] = [];
  const settle = (ended: boolean) => {
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(stderr)) waiter.resolve();
      else if (ended) {
        waiter.reject(new Error(`The caller ended without printing ${waiter.pattern}`));
      } else continue;
      waiters.splice(waiters.indexOf(waiter), 1);
    }
  };
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return settle(true);
      stderr += value;
      settle(false);
    }
  })();
  return {
    stop(): void {
      // A caller that already ended (it could not open its sessions) reports why in result().
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
    },
    printed(pattern: RegExp): Promise<void> {
      if (pattern.test(stderr)) return Promise.resolve();
      return new Promise((resolve, reject) => waiters.push({ pattern, resolve, reject }));
    },
    async result(): Promise<OpsRun> {
      const [status, out] = await Promise.all([child.status, stdout, rest]);
      return parseRun(status.code, new Uint8Array(out), new TextEncoder().encode(stderr));
    },
  };
}

/** Exit code and output of a run, with stdout parsed as JSON when it is JSON. */
export function parseRun(code: number, stdoutBytes: Uint8Array, stderrBytes: Uint8Array): OpsRun {
  const stdout = new TextDecoder().decode(stdoutBytes);
  const stderr = new TextDecoder().decode(stderrBytes);
  let json: unknown;
  try {
    json = stdout.trim() === "" ? undefined : JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}

/** A run's exit code and the tail of its output, for assertion messages. */
export function explain(run: OpsRun): string {
  // A probe's summary ends with its errors by kind: the part worth reading first.
  const errors = run.json?.errors
    ? `\nerrors: ${JSON.stringify(run.json.errors).slice(0, 2000)}`
    : "";
  return `exit ${run.code}${errors}\nstdout: ${run.stdout.slice(-2000)}\nstderr: ${
    run.stderr.slice(-3000)
  }`;
}

/** `docker …`; throws with stderr when it fails. */
export async function docker(...args: string[]): Promise<string> {
  const output = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`docker ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return text;
}
