/** Runs real mcp-router processes and connects the official MCP clients to them, for tests. */
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type ServiceProcess, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { freePort } from "./helpers/consul_dev.ts";

/** Headers of a raw JSON-RPC POST to the router. */
export const JSON_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

/** The `_meta` envelope of a raw 2026-07-28 request. */
export const MODERN_ENVELOPE: Readonly<Record<string, unknown>> = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};

/** The headers of a raw 2026-07-28 `tools/call` of `tool`. */
export function modernCallHeaders(tool: string): Record<string, string> {
  return { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": tool };
}

/**
 * Per-client limits lifted, for a benchmark or a test of something else that calls as fast as it
 * can from one client: at the defaults (200 calls/s, 64 at once) it would meet the limit.
 */
export const LIFTED_CLIENT_LIMITS: Readonly<Record<string, string>> = {
  ROUTER_CLIENT_MAX_RATE: "1000000",
  ROUTER_CLIENT_BURST: "1000000",
  ROUTER_CLIENT_MAX_CONCURRENT: "100000",
  ROUTER_MAX_IN_FLIGHT: "100000",
};

/** A running router process. */
export interface RouterProcess extends ServiceProcess {
  /** `http://127.0.0.1:<port>/mcp` */
  readonly url: URL;
  /** The ops port: `/healthz`, `/readyz`, `/metrics` (never on the MCP port). */
  readonly opsPort: number;
}

/** The JSON body of a 2025-11-25 `initialize` request, for raw HTTP requests in tests. */
export function initializeBody(clientName: string): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: clientName, version: "1" },
    },
  });
}

/** A base64 session key, shared by routers that must serve each other's sessions. */
export function sessionKeyText(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}

/** Starts `services/mcp-router/main.ts` on loopback and waits until it is ready. */
export async function startRouter(
  consulUrl: string,
  id: string,
  env: Record<string, string> = {},
): Promise<RouterProcess> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startRouterOnce(consulUrl, id, env);
    } catch (error) {
      // freePort() names a port that is free when asked; another process can take it before the
      // router binds it (seen once in CI: "Address already in use"). Ports the caller chose are
      // not retried.
      const portTaken = /Address already in use/.test((error as Error).message);
      if (!portTaken || attempt >= 3 || env.METRICS_PORT !== undefined) throw error;
    }
  }
}

async function startRouterOnce(
  consulUrl: string,
  id: string,
  env: Record<string, string>,
): Promise<RouterProcess> {
  const opsPort = Number(env.METRICS_PORT ?? freePort());
  const service = startService("mcp-router", {
    consulUrl,
    id,
    // A router refuses to start without credentials to check; tests of other things say so.
    env: {
      DRAIN_SECONDS: "0.2",
      METRICS_PORT: String(opsPort),
      ...(env.ROUTER_AUTH_TOKENS_FILE || env.ROUTER_OAUTH_ISSUER ? {} : { ROUTER_AUTH: "none" }),
      ...env,
    },
  });
  const router: RouterProcess = {
    ...service,
    url: new URL(`http://127.0.0.1:${service.port}/mcp`),
    opsPort,
  };
  let done = false;
  router.exited.then(() => done = true);
  try {
    await eventually(`router "${id}" ready`, async () => {
      if (done) throw new Error(`Router "${id}" exited: ${router.output()}`);
      const response = await fetch(`http://127.0.0.1:${router.opsPort}/readyz`);
      await response.body?.cancel();
      return response.status;
    }, (status) => status === 200);
  } catch (error) {
    await router.stop("SIGKILL");
    throw error;
  }
  return router;
}

/** A 2025-era client (SDK 1.x) connected to `url`. */
export async function connectV1(
  url: URL,
  options: { sessionId?: string; headers?: Record<string, string>; fetch?: typeof fetch } = {},
): Promise<{ client: ClientV1; transport: TransportV1 }> {
  const client = new ClientV1({ name: "router-test-v1", version: "1.0.0" });
  const transport = new TransportV1(url, {
    sessionId: options.sessionId,
    requestInit: { headers: options.headers ?? {} },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  await client.connect(transport);
  return { client, transport };
}

/** A 2026-07-28 client (SDK 2.x, pinned to the modern revision) connected to `url`. */
export async function connectV2(
  url: URL,
  options: {
    onToolsChanged?: (names: string[]) => void;
    /** The fetch the transport uses, e.g. one that reports when answers begin. */
    fetch?: typeof fetch;
  } = {},
): Promise<ClientV2> {
  const onToolsChanged = options.onToolsChanged;
  const client = new ClientV2({ name: "router-test-v2", version: "1.0.0" }, {
    versionNegotiation: { mode: { pin: "2026-07-28" } },
    ...(onToolsChanged
      ? {
        listChanged: {
          tools: {
            onChanged: (_error: Error | null, tools: { name: string }[] | null) =>
              onToolsChanged((tools ?? []).map((tool) => tool.name)),
          },
        },
      }
      : {}),
  });
  await client.connect(new TransportV2(url, options.fetch ? { fetch: options.fetch } : {}));
  return client;
}

/** A fetch for the MCP clients that tells when their listening streams are open. */
export interface ListenWatch {
  readonly fetch: typeof fetch;
  /** Resolves once `count` listening streams (2025 GET streams, 2026 `subscriptions/listen`) are open. */
  opened(count: number): Promise<void>;
}

/**
 * Wraps `fetch` to see listening streams open: the router adds a listener before it answers the
 * request, so once the answer's headers arrive, a catalog change reaches that client.
 */
export function watchListens(): ListenWatch {
  let open = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const wrapped: typeof fetch = async (input, init) => {
    const method = init?.method ?? (input instanceof Request ? input.method : "GET");
    const body = typeof init?.body === "string" ? init.body : "";
    const listening = method === "GET" || body.includes('"subscriptions/listen"');
    const response = await fetch(input, init);
    if (listening && response.ok) {
      open++;
      for (const waiter of waiters.filter((entry) => entry.count <= open)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
    return response;
  };
  return {
    fetch: wrapped,
    opened(count) {
      if (open >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
  };
}

/** Text of the first content block of a tool result. */
export function resultText(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content[0]?.text ?? "";
}

/** Backend calls the router has in flight to a Consul service, from its `/metrics`. */
export async function backendInFlight(router: RouterProcess, service: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${router.opsPort}/metrics`);
  const text = await response.text();
  const match = new RegExp(`mcp_router_backend_in_flight\\{service="${service}"\\} (\\d+)`)
    .exec(text);
  return match ? Number(match[1]) : 0;
}
