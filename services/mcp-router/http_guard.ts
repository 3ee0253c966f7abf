/**
 * Checks that run before any MCP processing: Origin, bearer token and body size. Each answers with
 * the HTTP status the transport spec asks for, or lets the request through.
 */
import { originValidationResponse } from "@modelcontextprotocol/server";
import { digestToken } from "./config.ts";

/** Options of {@linkcode guardRequest}. */
export interface GuardOptions {
  /** Hostnames an `Origin` may name; `"*"` allows any. */
  allowedOriginHostnames: readonly string[];
  /** Digests of accepted bearer tokens; empty: no auth. */
  authTokenDigests: ReadonlySet<string>;
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
  if (options.authTokenDigests.size > 0) {
    const header = request.headers.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    // Comparing digests keeps the comparison independent of how much of a token matched.
    if (!match || !options.authTokenDigests.has(await digestToken(match[1]))) {
      return {
        reason: "auth",
        response: jsonRpcError(401, -32001, "Missing or invalid bearer token", {
          "WWW-Authenticate": 'Bearer realm="mcp-router"',
        }),
      };
    }
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
