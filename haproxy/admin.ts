/** The HTTP side of `lb sync`: its Prometheus counters and reloads on demand. */

import { renderLbMetrics } from "./metrics.ts";
import type { LbSyncer } from "./syncer.ts";

/** Options of {@linkcode serveLbAdmin}. */
export interface ServeLbAdminOptions {
  hostname: string;
  port: number;
}

/** Answers `GET /metrics`, `GET /healthz` and `POST /reload`. */
export function lbAdminHandler(syncer: LbSyncer): (request: Request) => Promise<Response> {
  return async (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/metrics" && request.method === "GET") {
      return new Response(renderLbMetrics(syncer.counters), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    }
    if (pathname === "/healthz" && request.method === "GET") return new Response("ok\n");
    if (pathname === "/reload" && request.method === "POST") {
      const outcome = await syncer.reload();
      return Response.json(outcome, { status: outcome.reloaded ? 200 : 500 });
    }
    return new Response("not found\n", { status: 404 });
  };
}

/** Serves {@linkcode lbAdminHandler} until the returned server is shut down. */
export function serveLbAdmin(syncer: LbSyncer, options: ServeLbAdminOptions): Deno.HttpServer {
  return Deno.serve(
    { hostname: options.hostname, port: options.port, onListen: () => {} },
    lbAdminHandler(syncer),
  );
}
