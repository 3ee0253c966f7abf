/**
 * Finds the Consul agent of the Swarm node a process runs on.
 *
 * Consul's model is one agent per machine: an instance registers with the agent of its own node,
 * and that agent runs the instance's checks. On a multi-node Swarm every node runs one agent
 * (a server on the nodes labelled for it, a client elsewhere), named after the node's hostname.
 * So when a node is lost, the servers mark its agent failed (gossip) and every instance that agent
 * held leaves the passing set at once, while an instance on a surviving node is checked by an
 * agent beside it and never depends on a link to another node.
 *
 * A process learns its node's name from `CONSUL_NODE` (the stack sets it to
 * `{{.Node.Hostname}}`), asks any agent at `CONSUL_HTTP_ADDR` for that node's address in the
 * catalog, and from then on talks to that agent only. Without `CONSUL_NODE` (a process started by
 * hand, tests) `CONSUL_HTTP_ADDR` is used as it is. Requests go through the platform's one Consul
 * client with the process's token (`CONSUL_HTTP_TOKEN` or `CONSUL_HTTP_TOKEN_FILE`): under ACLs
 * the node lookup needs `node:read`, which every platform token has.
 */
import { ConsulClient, consulPath } from "./consul/client.ts";
import { loadConsulToken, parseConsulSettings } from "./consul/settings.ts";
import { backoffDelay } from "./backoff.ts";
import { delay } from "./delay.ts";
import type { Logger } from "./logger.ts";

/** A Consul node name as Consul and Docker accept them: a hostname label, no path or query. */
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Options of {@linkcode nodeLocalConsulUrl}. */
export interface LocalAgentOptions {
  logger: Logger;
  /** Ends the search (the process is stopping). */
  signal?: AbortSignal;
  /** Timeout of one request, in ms (default 3000). */
  requestTimeoutMs?: number;
  /** Consul ACL token. */
  token?: string;
}

/** Whether `name` may be used as a Consul node name in a URL. */
export function isNodeName(name: string): boolean {
  return NODE_NAME.test(name);
}

/**
 * The address of a node's agent from a `/v1/catalog/node/<name>` answer: an IPv4 literal, or
 * undefined when the answer holds none (the node is not in the catalog yet, or the value is not
 * an address).
 */
export function agentAddress(body: unknown): string | undefined {
  const node = (body as { Node?: { Address?: unknown } } | null)?.Node;
  const address = node?.Address;
  return typeof address === "string" && IPV4.test(address) ? address : undefined;
}

/**
 * The Consul URL this process should use: `CONSUL_HTTP_ADDR`, or, with `CONSUL_NODE` set, the
 * URL of that node's agent (same scheme and port). Waits, with backoff, until the node's agent is
 * in the catalog and answers; rejects only when `signal` aborts or `CONSUL_NODE` is malformed.
 */
export async function nodeLocalConsulUrl(
  consulUrl: string,
  node: string | undefined,
  options: LocalAgentOptions,
): Promise<string> {
  if (node === undefined || node.trim() === "") return consulUrl;
  if (!isNodeName(node)) {
    throw new Error(`CONSUL_NODE must be a node name, got ${JSON.stringify(node)}`);
  }
  const base = new URL(consulUrl);
  const timeoutMs = options.requestTimeoutMs ?? 3000;
  for (let attempt = 0;; attempt++) {
    options.signal?.throwIfAborted();
    let why: string;
    try {
      const address = await lookup(base, node, {
        timeoutMs,
        signal: options.signal,
        token: options.token,
      });
      if (address) {
        const local = new URL(base);
        local.hostname = address;
        const url = local.origin;
        await answers(url, { timeoutMs, signal: options.signal, token: options.token });
        options.logger.info("using the node's Consul agent", { node, consul: url });
        return url;
      }
      why = `node "${node}" is not in Consul's catalog yet`;
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      why = (error as Error).message;
    }
    const retryInMs = backoffDelay(attempt + 1, { baseMs: 250, maxMs: 3000, jitter: 0.2 });
    options.logger.warn("waiting for the node's Consul agent", {
      node,
      reason: why,
      retryInMs,
    });
    await delay(retryInMs, { signal: options.signal });
    options.signal?.throwIfAborted();
  }
}

interface RequestOptions {
  timeoutMs: number;
  signal: AbortSignal | undefined;
  token: string | undefined;
}

async function lookup(
  base: URL,
  node: string,
  options: RequestOptions,
): Promise<string | undefined> {
  const consul = new ConsulClient(base.origin, { token: options.token });
  // An unknown node is `null`.
  const body = await consul.get(consulPath("/v1/catalog/node", node), {
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  });
  return agentAddress(body);
}

async function answers(url: string, options: RequestOptions): Promise<void> {
  const consul = new ConsulClient(url, { token: options.token });
  await consul.get("/v1/status/leader", { timeoutMs: options.timeoutMs, signal: options.signal });
}

/**
 * Watches the node's agent: when it stops answering and the node's agent in the catalog has moved
 * to another address (its task was replaced), calls `onMoved` once. The process then restarts
 * (Swarm starts it again) and registers with the new agent; an agent that only paused is waited
 * for. Returns a function that stops the watch.
 */
export function watchNodeAgent(
  consulUrl: string,
  agentUrl: string,
  node: string,
  options: { logger: Logger; intervalMs?: number; token?: string; onMoved(to: string): void },
): () => void {
  const requests = { timeoutMs: 3000, token: options.token };
  const stopped = new AbortController();
  const intervalMs = options.intervalMs ?? 5000;
  (async () => {
    let failures = 0;
    while (!stopped.signal.aborted) {
      await delay(intervalMs, { signal: stopped.signal });
      if (stopped.signal.aborted) return;
      try {
        await answers(agentUrl, { ...requests, signal: stopped.signal });
        failures = 0;
        continue;
      } catch {
        failures++;
      }
      if (failures < 3) continue;
      try {
        const address = await lookup(new URL(consulUrl), node, {
          ...requests,
          signal: stopped.signal,
        });
        const moved = address && new URL(agentUrl).hostname !== address;
        if (moved) {
          const to = new URL(agentUrl);
          to.hostname = address;
          options.logger.warn("the node's Consul agent moved", { from: agentUrl, to: to.origin });
          options.onMoved(to.origin);
          return;
        }
      } catch {
        // No server answers either (the node is cut off): keep waiting for the agent.
      }
    }
  })();
  return () => stopped.abort();
}

/**
 * For a `main.ts`: the environment with `CONSUL_HTTP_ADDR` pointing at the node's own agent (see
 * the module header), and a watch that sends this process SIGTERM (a graceful stop; Swarm starts
 * it again) when that agent's task is replaced and comes back at another address.
 */
export async function withNodeAgent(
  env: Readonly<Record<string, string | undefined>>,
  logger: Logger,
): Promise<Record<string, string | undefined>> {
  const node = env.CONSUL_NODE?.trim();
  if (!node) return { ...env };
  const { settings } = parseConsulSettings(env, { defaultAddress: "http://consul:8500" });
  const consulUrl = settings.address;
  const token = await loadConsulToken(settings);
  const agentUrl = await nodeLocalConsulUrl(consulUrl, node, { logger, token });
  const stop = watchNodeAgent(consulUrl, agentUrl, node, {
    logger,
    token,
    onMoved: () => Deno.kill(Deno.pid, "SIGTERM"),
  });
  // The watch must not keep a stopping process alive.
  globalThis.addEventListener("unload", stop);
  return { ...env, CONSUL_HTTP_ADDR: agentUrl };
}
