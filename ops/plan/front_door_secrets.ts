/**
 * The front door's credentials for one deploy: the bearer tokens the routers accept (one per line
 * in a Docker secret, `ROUTER_AUTH_TOKENS_FILE`) and HAProxy's stats `user:password`. Pure: which
 * value each secret holds, what it is called, and which files to write for the user.
 *
 * Authenticated by default. A value the operator gives (`PLATFORM_MCP_TOKENS_FILE`,
 * `PLATFORM_STATS_AUTH_FILE`) wins; otherwise the file kept under `.platform/secrets/` does; the
 * first deploy writes that file with a value derived from the Consul management token
 * (ops/plan/consul_secrets.ts), so a lost file comes back the same. Swarm secrets cannot change,
 * so each name carries a hash of its value: new credentials are a new secret, and the services
 * roll over to it.
 */
import { contentHash } from "./build.ts";
import { stackSecretPath } from "./consul_secrets.ts";
import { parseStatsCredentials, statsAuthSecretName } from "./secrets.ts";

/** The kept MCP client token, relative to the project root (the default stack's). */
export const MCP_TOKEN_PATH = ".platform/secrets/mcp-token";

/** The kept stats credentials, relative to the project root (the default stack's). */
export const STATS_AUTH_PATH = ".platform/secrets/lb-stats-auth";

/** The user name of the stats credentials `deploy` makes. */
export const STATS_USER = "platform";

/** Where `stack`'s MCP client token is kept, relative to the project root. */
export function mcpTokenPath(stack: string): string {
  return stackSecretPath(stack, "mcp-token");
}

/** Where `stack`'s stats credentials are kept, relative to the project root. */
export function statsAuthPath(stack: string): string {
  return stackSecretPath(stack, "lb-stats-auth");
}

/** The routers' tokens secret: named after its content, like the stats credentials'. */
export function mcpTokensSecretName(stack: string, tokens: string): string {
  return `${stack}_mcp-tokens-${contentHash([{ label: "tokens", content: tokens }])}`;
}

// RFC 6750, section 2.1 (b64token): what a client can send, and what the router accepts.
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
// Shorter than this is guessable; the tokens deploy makes have 43 characters.
const MIN_TOKEN_CHARS = 16;

/** The tokens of a tokens file (one per line, `#` comments), checked; throws naming the file. */
export function parseTokenLines(text: string, file: string): string[] {
  const tokens = text.split("\n").map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  if (tokens.length === 0) throw new Error(`Invalid MCP tokens in "${file}": no token in it`);
  tokens.forEach((token, index) => {
    if (!BEARER_TOKEN.test(token) || token.length < MIN_TOKEN_CHARS) {
      throw new Error(
        `Invalid MCP token ${index + 1} in "${file}": expected at least ${MIN_TOKEN_CHARS} ` +
          `letters, digits or "-._~+/="`,
      );
    }
  });
  return tokens;
}

/** A text the operator gave, or a kept file's, with where it came from. */
export interface FileText {
  /** The file's path, for messages. */
  readonly file: string;
  readonly text: string;
}

/** What {@linkcode planFrontDoorSecrets} decides from. */
export interface FrontDoorInput {
  readonly stack: string;
  /** `deploy --no-auth`: the routers take calls without credentials. */
  readonly noAuth: boolean;
  /** Values derived from the Consul management token, used when nothing else is there. */
  readonly derived: { readonly mcpClientToken: string; readonly statsPassword: string };
  /** `PLATFORM_MCP_TOKENS_FILE`, read. */
  readonly givenTokens?: FileText;
  /** `PLATFORM_STATS_AUTH_FILE`, read. */
  readonly givenStatsAuth?: FileText;
  /** The kept MCP token file, read; undefined when missing. */
  readonly keptToken?: FileText;
  /** The kept stats credentials file, read; undefined when missing. */
  readonly keptStatsAuth?: FileText;
}

/** One secret to have in Swarm. */
export interface PlannedSecret {
  readonly name: string;
  readonly value: string;
  /** Where the value came from: given by the operator, a kept file, or made now. */
  readonly source: "given" | "kept" | "new";
}

/** A file to write for the user (mode 0600), and the one line saying so. */
export interface PlannedFile {
  /** Relative to the project root. */
  readonly path: string;
  readonly text: string;
  readonly note: string;
}

/** The front door's secrets for one deploy. */
export interface FrontDoorPlan {
  /** The routers' tokens; undefined with `--no-auth`. */
  readonly mcpTokens: PlannedSecret | undefined;
  readonly statsAuth: PlannedSecret;
  readonly files: readonly PlannedFile[];
}

/**
 * Decides the front door's secrets. Throws (naming the file) when a given or kept value is not
 * usable, and when `--no-auth` meets `PLATFORM_MCP_TOKENS_FILE`.
 */
export function planFrontDoorSecrets(input: FrontDoorInput): FrontDoorPlan {
  const files: PlannedFile[] = [];
  let mcpTokens: PlannedSecret | undefined;
  if (input.noAuth && input.givenTokens) {
    throw new Error(
      `--no-auth contradicts PLATFORM_MCP_TOKENS_FILE "${input.givenTokens.file}": drop one`,
    );
  }
  if (!input.noAuth) {
    if (input.givenTokens) {
      const tokens = parseTokenLines(input.givenTokens.text, input.givenTokens.file);
      mcpTokens = secret(mcpTokensSecretName, input.stack, `${tokens.join("\n")}\n`, "given");
    } else if (input.keptToken) {
      const [token, ...more] = parseTokenLines(input.keptToken.text, input.keptToken.file);
      if (more.length > 0) {
        throw new Error(`Invalid MCP token in "${input.keptToken.file}": expected one token`);
      }
      mcpTokens = secret(mcpTokensSecretName, input.stack, `${token}\n`, "kept");
    } else {
      const token = input.derived.mcpClientToken;
      mcpTokens = secret(mcpTokensSecretName, input.stack, `${token}\n`, "new");
      const path = mcpTokenPath(input.stack);
      files.push({
        path,
        text: `${token}\n`,
        note: `wrote the MCP client token to "${path}" (mode 0600): clients send ` +
          `"Authorization: Bearer <token>"`,
      });
    }
  }
  let statsAuth: PlannedSecret;
  if (input.givenStatsAuth) {
    const { text, file } = input.givenStatsAuth;
    statsAuth = secret(
      statsAuthSecretName,
      input.stack,
      parseStatsCredentials(text, file),
      "given",
    );
  } else if (input.keptStatsAuth) {
    const { text, file } = input.keptStatsAuth;
    statsAuth = secret(statsAuthSecretName, input.stack, parseStatsCredentials(text, file), "kept");
  } else {
    const credentials = `${STATS_USER}:${input.derived.statsPassword}`;
    statsAuth = secret(statsAuthSecretName, input.stack, credentials, "new");
    const path = statsAuthPath(input.stack);
    files.push({
      path,
      text: `${credentials}\n`,
      note: `wrote HAProxy's stats credentials (user:password) to "${path}" (mode 0600)`,
    });
  }
  return { mcpTokens, statsAuth, files };
}

function secret(
  name: (stack: string, value: string) => string,
  stack: string,
  value: string,
  source: PlannedSecret["source"],
): PlannedSecret {
  return { name: name(stack, value), value, source };
}
