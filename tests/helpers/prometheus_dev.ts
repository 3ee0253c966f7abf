/**
 * Runs the Prometheus container's program (`prometheus/main.ts`: config rendering, Consul
 * discovery, Debian's real `prometheus`) on free loopback ports for integration tests.
 */
import { freePort } from "./consul_dev.ts";
import { spawnDeno, type TestProcess } from "./service_process.ts";
import { until } from "./poll.ts";

/** A running Prometheus. */
export interface PrometheusDev extends TestProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Its port. */
  readonly port: number;
}

/** One active target of `/api/v1/targets`. */
export interface ActiveTarget {
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
}

/**
 * Starts `prometheus/main.ts` with `env` (on top of loopback ports and a temporary data folder)
 * and waits until Prometheus is ready. Stop it with `stop()`; its folder is removed then.
 */
export async function startPrometheus(env: Record<string, string>): Promise<PrometheusDev> {
  const dir = await Deno.makeTempDir({ prefix: "prometheus-test-" });
  const port = freePort();
  const child = spawnDeno(["prometheus/main.ts"], {
    env: {
      PROMETHEUS_PORT: String(port),
      PROMETHEUS_SD_PORT: String(freePort()),
      PROMETHEUS_BIND_ADDR: "127.0.0.1",
      PROMETHEUS_DATA_DIR: `${dir}/data`,
      PROMETHEUS_RUN_DIR: `${dir}/run`,
      PROMETHEUS_RETENTION_TIME: "1h",
      LOG_LEVEL: "warn",
      ...env,
    },
  });
  let done = false;
  child.exited.then(() => done = true);
  const url = `http://127.0.0.1:${port}`;
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const status = await child.stop(signal);
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return status;
  };
  try {
    await until(`Prometheus at "${url}" to be ready`, async () => {
      if (done) throw new Error(`Prometheus exited at start: ${child.output()}`);
      const response = await fetch(`${url}/-/ready`);
      await response.body?.cancel();
      return response.ok;
    }, { timeoutMs: 20_000, intervalMs: 100 });
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}: ${child.output()}`);
  }
  return { ...child, url, port, stop };
}

/** The active targets Prometheus scrapes. */
export async function activeTargets(url: string): Promise<ActiveTarget[]> {
  const response = await fetch(`${url}/api/v1/targets?state=active`);
  const body = await response.json() as { data: { activeTargets: ActiveTarget[] } };
  return body.data.activeTargets;
}

/** The value of an instant PromQL query with one series; undefined when it has none. */
export async function queryValue(url: string, query: string): Promise<number | undefined> {
  const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = await response.json() as { data: { result: { value: [number, string] }[] } };
  const value = body.data.result[0]?.value[1];
  return value === undefined ? undefined : Number(value);
}
