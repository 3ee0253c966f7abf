/**
 * Checks that run before any MCP processing: Origin, bearer token and body size. Each answers with
 * the HTTP status the transport spec asks for, or lets the request through.
 */
import { originValidationResponse } from "@modelcontextprotocol/server";
import type { BearerAuth } from "./bearer_auth.ts";

/** Options of {@linkcode guardRequest}. */
export interface GuardOptions {
  /** Hostnames an `Origin` may name; `"*"` allows any. */
  allowedOriginHostnames: readonly string[];
  /** Checks the bearer credentials; undefined: the operator chose no auth (`ROUTER_AUTH=none`). */
  auth: Pick<BearerAuth, "check"> | undefined;
  maxBodyBytes: number;
}

/** Why a request was refused, for logs and metrics. */
export type GuardRejection = "origin" | "auth" | "body_too_large";

/** A refusal: the response to send and its reason. */
export interface GuardResult {
  response: Response;
  reason: GuardRejection;
}

/** Returns a refusal for a request that must not reach the MCP handlers, else `undefined`. */
export async function guardRequest(
  request: Request,
  options: GuardOptions,
): Promise<GuardResult | undefined> {
  if (!options.allowedOriginHostnames.includes("*")) {
    const rejected = originValidationResponse(request, [...options.allowedOriginHostnames]);
    if (rejected) return { response: rejected, reason: "origin" };
  }
  if (options.auth) {
    const outcome = await options.auth.check(request);
    if (!outcome.ok) return { reason: "auth", response: outcome.response };
  }
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) > options.maxBodyBytes) {
    return {
      reason: "body_too_large",
      response: jsonRpcError(
        413,
        -32600,
        `Request body of ${length} bytes is over the limit of ${options.maxBodyBytes} bytes`,
      ),
    };
  }
  return undefined;
}

/** A JSON-RPC error response with no id, as transports answer errors outside any request. */
export function jsonRpcError(
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return Response.json({ jsonrpc: "2.0", error: { code, message }, id: null }, {
    status,
    headers,
  });
}
