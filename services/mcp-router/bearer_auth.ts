/**
 * Who may call `/mcp`: a request carries `Authorization: Bearer <token>` (RFC 6750, section 2.1),
 * where the token is one of the static tokens (`ROUTER_AUTH_TOKENS_FILE`) or an OAuth access
 * token, a JWT the configured issuer signed for this resource (MCP authorization, "Token
 * Handling": signature, `iss`, `aud`, `exp` and `nbf` checked). Anything else gets 401 with a
 * `WWW-Authenticate: Bearer` challenge naming the Protected Resource Metadata when OAuth is on.
 *
 * JWTs are checked with jose (`npm:jose`, pinned in deno.json): a maintained, dependency-free
 * implementation of JWS/JWT/JWK on WebCrypto, also what the MCP SDKs use, rather than hand-written
 * signature and claim checks.
 */
import { jwtVerify, type JWTVerifyGetKey } from "jose";
import { digestToken } from "./config.ts";
import type { OAuthSettings } from "./oauth_settings.ts";

/** Why a request was not let through, for logs and metrics. */
export type AuthFailure = "missing" | "invalid" | "expired" | "unavailable";

/** The result of {@linkcode BearerAuth.check}. */
export type AuthOutcome =
  | { readonly ok: true; readonly via: "static" | "jwt"; readonly subject?: string }
  | { readonly ok: false; readonly failure: AuthFailure; readonly response: Response };

/** Options of {@linkcode BearerAuth}. */
export interface BearerAuthOptions {
  /** SHA-256 digests of the static tokens. */
  tokenDigests: ReadonlySet<string>;
  /** Issuer, audience and metadata URL; undefined: static tokens only. */
  oauth?: OAuthSettings;
  /** The issuer's keys (a {@linkcode JwksCache}'s `getKey`); needed with `oauth`. */
  keys?: JWTVerifyGetKey;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

/** Algorithms accepted on access tokens: asymmetric only, never `none` or a shared secret. */
export const ACCESS_TOKEN_ALGORITHMS: readonly string[] = Object.freeze([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
]);

// Headers and tokens are attacker-sized: anything longer is refused before parsing or hashing.
const MAX_TOKEN_CHARS = 8 * 1024;
// Clocks of the issuer and the routers differ a little.
const CLOCK_TOLERANCE_SECONDS = 30;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// RFC 6750, section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** Checks bearer credentials; one per router. */
export class BearerAuth {
  readonly #options: BearerAuthOptions;
  readonly #now: () => number;

  constructor(options: BearerAuthOptions) {
    if (options.oauth && !options.keys) throw new TypeError("OAuth settings need a key source");
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Whether any credential is asked for. */
  get enabled(): boolean {
    return this.#options.tokenDigests.size > 0 || this.#options.oauth !== undefined;
  }

  /** Lets the request through, or gives the 401 (503 when the issuer's keys are unreachable). */
  async check(request: Request): Promise<AuthOutcome> {
    const header = request.headers.get("authorization");
    // RFC 6750, section 3.1: a request with no credentials gets a challenge without an error code.
    if (header === null || !/^Bearer(\s|$)/i.test(header)) {
      return this.#refuse("missing");
    }
    const match = header.length <= MAX_TOKEN_CHARS + 16 ? BEARER.exec(header) : null;
    if (!match) return this.#refuse("invalid", "The bearer token is malformed");
    const token = match[1];
    // Comparing digests keeps the comparison independent of how much of a token matched.
    if (
      this.#options.tokenDigests.size > 0 &&
      this.#options.tokenDigests.has(digestToken(token))
    ) {
      return { ok: true, via: "static" };
    }
    const { oauth, keys } = this.#options;
    if (!oauth || !keys || !JWT_SHAPE.test(token)) {
      return this.#refuse("invalid", "The bearer token is not valid");
    }
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: oauth.issuer,
        audience: [...oauth.audiences],
        algorithms: [...ACCESS_TOKEN_ALGORITHMS],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(this.#now()),
        // RFC 9068 access tokens carry these; without `exp` a token would never end.
        requiredClaims: ["exp"],
      });
      return { ok: true, via: "jwt", subject: payload.sub };
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "JWKS_UNAVAILABLE") return this.#unavailable();
      if (code === "ERR_JWT_EXPIRED") return this.#refuse("expired", "The access token expired");
      return this.#refuse("invalid", describe(error as { code?: string; claim?: string }));
    }
  }

  #challenge(error?: string, description?: string): string {
    const parts = ['Bearer realm="mcp-router"'];
    if (this.#options.oauth) {
      parts.push(`resource_metadata="${this.#options.oauth.resourceMetadataUrl}"`);
    }
    // RFC 6750, section 3: error_description is restricted to printable ASCII without `"` and `\`.
    if (error) parts.push(`error="${error}"`);
    if (description) parts.push(`error_description="${description}"`);
    return parts.join(", ");
  }

  #refuse(failure: AuthFailure, description?: string): AuthOutcome {
    const challenge = failure === "missing"
      ? this.#challenge()
      : this.#challenge("invalid_token", description);
    return {
      ok: false,
      failure,
      response: Response.json({
        jsonrpc: "2.0",
        error: { code: -32001, message: "Missing or invalid bearer token" },
        id: null,
      }, { status: 401, headers: { "WWW-Authenticate": challenge } }),
    };
  }

  #unavailable(): AuthOutcome {
    return {
      ok: false,
      failure: "unavailable",
      response: Response.json({
        jsonrpc: "2.0",
        error: {
          code: -32001,
          message: "Cannot check the access token now: the issuer's keys are unavailable",
        },
        id: null,
      }, { status: 503, headers: { "Retry-After": "30" } }),
    };
  }
}

/** A fixed description per kind of failure: never a value taken from the token. */
function describe(error: { code?: string; claim?: string }): string {
  switch (error.code) {
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      switch (error.claim) {
        case "aud":
          return "The access token is not meant for this resource";
        case "iss":
          return "The access token is from another issuer";
        case "nbf":
          return "The access token is not valid yet";
        default:
          return "The access token has invalid claims";
      }
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
    case "ERR_JWKS_NO_MATCHING_KEY":
      return "The access token signature does not verify";
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return "The access token algorithm is not accepted";
    default:
      return "The access token is malformed";
  }
}
