/**
 * The router as an OAuth 2.1 resource server (MCP authorization, 2025-06-18 and 2025-11-25): which
 * issuer's access tokens it accepts, where that issuer's keys are, which audience a token must
 * name, and where its Protected Resource Metadata (RFC 9728) lives. Pure: parsed from the
 * environment, problems collected for the caller to report.
 */
import type { Env } from "../runtime/config.ts";

/** The OAuth settings of the router; absent when it accepts static tokens only. */
export interface OAuthSettings {
  /** The authorization server's issuer identifier: the value a token's `iss` must equal. */
  readonly issuer: string;
  /** Where the issuer publishes its JSON Web Key Set. */
  readonly jwksUrl: string;
  /** This MCP server's canonical URI (RFC 8707 resource), as clients name it. */
  readonly resource: string;
  /** Values a token's `aud` must include one of; the resource by default. */
  readonly audiences: readonly string[];
  /** The URL of the metadata document, named in every challenge (RFC 9728, section 5.1). */
  readonly resourceMetadataUrl: string;
  /** The path the router serves that document on (`/.well-known/oauth-protected-resource…`). */
  readonly resourceMetadataPath: string;
  /** Scopes listed in the metadata document (`ROUTER_OAUTH_SCOPES`); none required. */
  readonly scopesSupported: readonly string[];
}

/** The well-known path prefix of RFC 9728, section 3. */
export const RESOURCE_METADATA_PREFIX = "/.well-known/oauth-protected-resource";

const OAUTH_NAMES = [
  "ROUTER_OAUTH_ISSUER",
  "ROUTER_OAUTH_JWKS_URL",
  "ROUTER_OAUTH_AUDIENCE",
  "ROUTER_RESOURCE_URL",
  "ROUTER_OAUTH_SCOPES",
] as const;

/**
 * Parses `ROUTER_OAUTH_*` and `ROUTER_RESOURCE_URL`; undefined when none is set. Every problem
 * goes to `problems` (the caller throws them together).
 */
export function parseOAuthSettings(env: Env, problems: string[]): OAuthSettings | undefined {
  const value = (name: (typeof OAUTH_NAMES)[number]) => env[name]?.trim() || undefined;
  const issuer = value("ROUTER_OAUTH_ISSUER");
  if (issuer === undefined) {
    const stray = OAUTH_NAMES.filter((name) => value(name) !== undefined);
    if (stray.length > 0) {
      problems.push(`${stray.join(", ")} set without ROUTER_OAUTH_ISSUER`);
    }
    return undefined;
  }
  const before = problems.length;
  // The MCP authorization spec wants the authorization server's endpoints on HTTPS; plain HTTP is
  // allowed on loopback only, for a local issuer in development and tests.
  secureUrl("ROUTER_OAUTH_ISSUER", issuer, problems);
  const jwksUrl = value("ROUTER_OAUTH_JWKS_URL");
  if (jwksUrl === undefined) {
    problems.push(
      "ROUTER_OAUTH_JWKS_URL is required with ROUTER_OAUTH_ISSUER: the URL of the issuer's JSON Web Key Set",
    );
  } else secureUrl("ROUTER_OAUTH_JWKS_URL", jwksUrl, problems);
  const resourceText = value("ROUTER_RESOURCE_URL");
  let resource: URL | undefined;
  if (resourceText === undefined) {
    problems.push(
      'ROUTER_RESOURCE_URL is required with ROUTER_OAUTH_ISSUER: this server\'s public MCP URL, e.g. "https://mcp.example.com/mcp"',
    );
  } else resource = resourceUrl(resourceText, problems);
  const audiences = (value("ROUTER_OAUTH_AUDIENCE") ?? "").split(",").map((part) => part.trim())
    .filter((part) => part !== "");
  const scopes = (value("ROUTER_OAUTH_SCOPES") ?? "").split(/[\s,]+/).filter((s) => s !== "");
  for (const scope of scopes) {
    // RFC 6749, section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    if (!/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(scope)) {
      problems.push(`Invalid ROUTER_OAUTH_SCOPES entry "${scope}": not an OAuth scope token`);
    }
  }
  if (problems.length > before || resource === undefined || jwksUrl === undefined) return undefined;
  const canonical = canonicalResource(resource);
  // RFC 9728, section 3.1: the well-known segment goes between the host and the resource's path.
  const path = resource.pathname === "/" ? "" : resource.pathname.replace(/\/$/, "");
  return Object.freeze({
    issuer,
    jwksUrl,
    resource: canonical,
    audiences: Object.freeze(audiences.length > 0 ? audiences : [canonical]),
    resourceMetadataUrl: `${resource.origin}${RESOURCE_METADATA_PREFIX}${path}`,
    resourceMetadataPath: `${RESOURCE_METADATA_PREFIX}${path}`,
    scopesSupported: Object.freeze(scopes),
  });
}

/** The RFC 9728 document describing this resource server. */
export function resourceMetadata(settings: OAuthSettings): Record<string, unknown> {
  return {
    resource: settings.resource,
    authorization_servers: [settings.issuer],
    bearer_methods_supported: ["header"],
    ...(settings.scopesSupported.length > 0
      ? { scopes_supported: [...settings.scopesSupported] }
      : {}),
    resource_name: "agent-platform MCP router",
  };
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

function secureUrl(name: string, text: string, problems: string[]): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push(`Invalid ${name} "${text}": not an absolute URL`);
    return;
  }
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && LOOPBACK.has(url.hostname)) return;
  problems.push(`Invalid ${name} "${text}": must be an https URL (http only on loopback)`);
}

function resourceUrl(text: string, problems: string[]): URL | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push(`Invalid ROUTER_RESOURCE_URL "${text}": not an absolute URL`);
    return undefined;
  }
  // RFC 8707, section 2: an absolute URI without a fragment.
  if (!["http:", "https:"].includes(url.protocol) || url.hash !== "" || text.includes("#")) {
    problems.push(
      `Invalid ROUTER_RESOURCE_URL "${text}": expected an http(s) URL without fragment`,
    );
    return undefined;
  }
  return url;
}

/** The canonical form (lower-case scheme and host, no trailing slash): what `aud` must say. */
function canonicalResource(url: URL): string {
  const path = url.pathname === "/" ? "" : url.pathname.replace(/\/$/, "");
  return `${url.protocol}//${url.host}${path}${url.search}`;
}
