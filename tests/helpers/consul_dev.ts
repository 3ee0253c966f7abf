/** Starts a real `consul agent -dev` on free loopback ports for integration tests. */
import { until } from "./poll.ts";

/** A running dev agent. */
export interface ConsulDev {
  /** Base URL of its HTTP API, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** With ACLs on: the management (master) token, also the agent's own token. */
  readonly managementToken: string | undefined;
  /** Ports it listens on. */
  readonly ports: ConsulPorts;
  /** Stops the agent (SIGTERM, then SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same ports, with a fresh in-memory state. */
  restart(): Promise<void>;
}

/** The ports a dev agent uses. */
export interface ConsulPorts {
  http: number;
  serfLan: number;
  serfWan: number;
  server: number;
  grpc: number;
}

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Options of {@linkcode startConsulDev}. */
export interface ConsulDevOptions {
  /**
   * ACLs on with `default_policy = "deny"`, as the stack runs them: a fresh management token is
   * made and given to the agent as its master and agent token.
   */
  /** `"unbootstrapped"`: ACLs on without a master token, for `PUT /v1/acl/bootstrap` to make one. */
  acl?: boolean | "unbootstrapped";
  /** Cumulative counters at `/v1/agent/metrics?format=prometheus` (e.g. KV writes applied). */
  telemetry?: boolean;
}

function spawnAgent(
  ports: ConsulPorts,
  options: ConsulDevOptions,
  managementToken: string | undefined,
): Deno.ChildProcess {
  const acl = options.acl;
  const tokens = managementToken === undefined
    ? ""
    : `tokens { master = "${managementToken}" agent = "${managementToken}" } `;
  const aclArgs = acl
    ? ["-hcl", `acl { enabled = true default_policy = "deny" down_policy = "deny" ${tokens}}`]
    : [];
  const args = [
    "agent",
    "-dev",
    "-bind=127.0.0.1",
    "-client=127.0.0.1",
    "-log-level=warn",
    `-http-port=${ports.http}`,
    "-dns-port=-1",
    `-serf-lan-port=${ports.serfLan}`,
    `-serf-wan-port=${ports.serfWan}`,
    `-server-port=${ports.server}`,
    `-grpc-port=${ports.grpc}`,
    ...aclArgs,
    ...(options.telemetry
      ? ["-hcl", 'telemetry { prometheus_retention_time = "10m" disable_hostname = true }']
      : []),
  ];
  return new Deno.Command("consul", { args, stdout: "null", stderr: "null", stdin: "null" })
    .spawn();
}

/** Waits until the agent at `url` has a leader and answers its catalog API. */
export async function waitForConsul(
  url: string,
  timeoutMs = 20_000,
  token?: string,
): Promise<void> {
  const headers: Record<string, string> = token === undefined ? {} : { "X-Consul-Token": token };
  await until(`Consul at "${url}" to have a leader and answer its catalog`, async () => {
    const response = await fetch(`${url}/v1/status/leader`);
    const leader = await response.text();
    if (!response.ok || leader.length <= 4) return false;
    const services = await fetch(`${url}/v1/catalog/services`, { headers });
    await services.body?.cancel();
    return services.ok;
  }, { timeoutMs, intervalMs: 100 });
}

function pickPorts(): ConsulPorts {
  return {
    http: freePort(),
    serfLan: freePort(),
    serfWan: freePort(),
    server: freePort(),
    grpc: freePort(),
  };
}

/** Starts a dev agent and waits until it is ready. */
export async function startConsulDev(options: ConsulDevOptions = {}): Promise<ConsulDev> {
  const managementToken = options.acl === true ? crypto.randomUUID() : undefined;
  // A port found free can be taken by another process before the agent binds it (tests run in
  // parallel): an agent that does not come up is replaced by one on fresh ports.
  let ports = pickPorts();
  let url = `http://127.0.0.1:${ports.http}`;
  let child = spawnAgent(ports, options, managementToken);
  for (let attempt = 1;; attempt++) {
    try {
      await waitForConsul(url, 15_000, managementToken);
      break;
    } catch (error) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
      if (attempt === 3) throw error;
      ports = pickPorts();
      url = `http://127.0.0.1:${ports.http}`;
      child = spawnAgent(ports, options, managementToken);
    }
  }

  async function stop(): Promise<void> {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5_000);
    await child.status;
    clearTimeout(timer);
  }

  return {
    url,
    managementToken,
    ports,
    stop,
    async restart() {
      await stop();
      child = spawnAgent(ports, options, managementToken);
      await waitForConsul(url, 20_000, managementToken);
    },
  };
}
