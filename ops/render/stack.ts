/** Renders stack.yml for one deployment: variables, content-tagged images, replica counts. */
import { parse, stringify } from "yaml";

/** Options of {@linkcode renderStack}. */
export interface RenderStackOptions {
  /** Values of `${VAR}` / `${VAR:-default}` in the file. */
  vars: Readonly<Record<string, string>>;
  /** Image per service name (`echo-agent` → `agent-platform/echo-agent:3f2a…`). */
  images: Readonly<Record<string, string>>;
  /** Replica counts to keep per service (a deploy does not undo `scale`). */
  replicas?: Readonly<Record<string, number>>;
  /**
   * The Swarm secret holding `user:password` for HAProxy's stats page, mounted into the `lb`
   * service; undefined: the stats page has no auth.
   */
  statsAuthSecret?: string;
  /**
   * `deploy --no-auth`: the routers take calls without credentials (`ROUTER_AUTH=none`, no tokens
   * secret), and their service carries {@linkcode AUTH_LABEL} so `status` can say so.
   */
  noAuth?: boolean;
  /** Service labels to set on top of the file's (`deploy.labels`), by service. */
  keepLabels?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Services of the file left out of this deploy (optional ones nobody asked for). */
  omit?: readonly string[];
}

/** The routers' service label that records an explicit `deploy --no-auth` (value `none`). */
export const AUTH_LABEL = "platform.auth";

/** The stack file's secret with the routers' bearer tokens. */
const MCP_TOKENS_SECRET = "mcp-tokens";

/** Where the `lb` service finds its stats credentials. */
export const STATS_AUTH_TARGET = "lb-stats-auth";
/** The user every platform image runs as (services/Dockerfile and the others), for secrets. */
export const PLATFORM_UID = "10001";

/**
 * Replaces `${NAME}` and `${NAME:-default}` the way `docker stack deploy` does; `$$` is a literal
 * `$`. An unset variable with no default is an error, so nothing half-rendered gets deployed.
 */
export function interpolate(text: string, vars: Readonly<Record<string, string>>): string {
  const missing = new Set<string>();
  const out = text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g,
    (match, name: string | undefined, fallback: string | undefined) => {
      if (match === "$$") return "$";
      const value = vars[name!];
      if (value !== undefined && value !== "") return value;
      if (fallback !== undefined) return fallback;
      missing.add(name!);
      return "";
    },
  );
  if (missing.size > 0) {
    throw new Error(`Stack file uses unset variables: ${[...missing].sort().join(", ")}`);
  }
  return out;
}

interface StackService {
  image?: string;
  deploy?: { replicas?: number; labels?: Record<string, string> };
  environment?: Record<string, string>;
  secrets?:
    (string | { source?: string; target?: string; uid?: string; gid?: string; mode?: number })[];
}

interface StackDocument {
  services?: Record<string, StackService>;
  secrets?: Record<string, unknown>;
}

/** Renders the stack file: interpolated, merge keys resolved, images and replicas set. */
export function renderStack(template: string, options: RenderStackOptions): string {
  // Swarm templates (`{{.Task.ID}}`) pass through untouched: they are plain strings to YAML.
  const document = parse(interpolate(template, options.vars), { merge: true }) as StackDocument;
  const services = document.services ?? {};
  for (const name of options.omit ?? []) delete services[name];
  for (const [name, image] of Object.entries(options.images)) {
    const service = services[name];
    if (!service) throw new Error(`Stack file has no service "${name}"`);
    service.image = image;
  }
  for (const [name, replicas] of Object.entries(options.replicas ?? {})) {
    const service = services[name];
    if (!service) continue;
    service.deploy = { ...service.deploy, replicas };
  }
  for (const [name, labels] of Object.entries(options.keepLabels ?? {})) {
    const service = services[name];
    if (!service) continue;
    service.deploy = { ...service.deploy, labels: { ...service.deploy?.labels, ...labels } };
  }
  if (options.noAuth) withoutAuth(document);
  if (options.statsAuthSecret) {
    if (!services.lb) throw new Error('Stack file has no service "lb" for the stats credentials');
    document.secrets = {
      ...document.secrets,
      [STATS_AUTH_TARGET]: { external: true, name: options.statsAuthSecret },
    };
    // HAProxy checks the credentials; Prometheus scrapes HAProxy's /metrics with them.
    for (const name of ["lb", "prometheus"]) {
      const service = services[name];
      if (!service) continue;
      // 256 is 0400: only the container's user (the images' uid 10001) may read it.
      service.secrets = [...service.secrets ?? [], {
        source: STATS_AUTH_TARGET,
        target: STATS_AUTH_TARGET,
        uid: PLATFORM_UID,
        gid: PLATFORM_UID,
        mode: 256,
      }];
      service.environment = {
        ...service.environment,
        LB_STATS_AUTH_FILE: `/run/secrets/${STATS_AUTH_TARGET}`,
      };
    }
  }
  // Extension fields were only there to be merged.
  const rendered = Object.fromEntries(
    Object.entries(document).filter(([key]) => !key.startsWith("x-")),
  );
  return stringify(rendered, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/** Drops the routers' bearer tokens: they serve MCP to anyone (`deploy --no-auth`). */
function withoutAuth(document: StackDocument): void {
  const router = document.services?.["mcp-router"];
  if (!router) throw new Error('Stack file has no service "mcp-router" to run without auth');
  const environment: Record<string, string> = { ...router.environment, ROUTER_AUTH: "none" };
  delete environment.ROUTER_AUTH_TOKENS_FILE;
  router.environment = environment;
  router.secrets = (router.secrets ?? []).filter((entry) =>
    (typeof entry === "string" ? entry : entry.source) !== MCP_TOKENS_SECRET
  );
  router.deploy = { ...router.deploy, labels: { ...router.deploy?.labels, [AUTH_LABEL]: "none" } };
  if (document.secrets) delete document.secrets[MCP_TOKENS_SECRET];
}

/** The service names of a stack file. */
export function stackServiceNames(template: string): string[] {
  const document = parse(interpolate(template, {}), { merge: true }) as StackDocument;
  return Object.keys(document.services ?? {});
}

/** The named volumes of a stack file, as Swarm names them (`<stack>_<volume>`). */
export function stackVolumeNames(template: string, stack: string): string[] {
  const document = parse(interpolate(template, {}), { merge: true }) as {
    volumes?: Record<string, { name?: string } | null>;
  };
  return Object.entries(document.volumes ?? {})
    .map(([key, volume]) => volume?.name ?? `${stack}_${key}`);
}
