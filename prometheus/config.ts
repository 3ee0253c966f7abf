/**
 * Renders Prometheus's configuration (`templates/prometheus.yml.hbs`): every Consul instance that
 * registers a `metrics_port`, the MCP routers, HAProxy's exporter, and Prometheus itself.
 */
import Handlebars from "handlebars";

/** Where HAProxy's `/metrics` is found: Swarm DNS names (`tasks.lb`) or fixed `host:port`. */
export type LbTargets =
  | { readonly dnsNames: readonly string[]; readonly port: number }
  | { readonly targets: readonly string[] };

/** Options of {@linkcode renderPrometheusConfig}. */
export interface PrometheusConfigOptions {
  /** URL of the Consul discovery endpoint (`prometheus/consul_sd.ts`). */
  readonly sdUrl: string;
  readonly lb: LbTargets;
  /** Seconds between scrapes (default 5). */
  readonly scrapeIntervalSeconds?: number;
  /** Seconds between discovery refreshes (default 5). */
  readonly refreshIntervalSeconds?: number;
  /** Prometheus's own `host:port` (default `localhost:9090`). */
  readonly selfTarget?: string;
  /** The routers' name in Consul (default `mcp-router`). */
  readonly routerService?: string;
  /** HAProxy's stats credentials: the user name and a file holding the password; none: no auth. */
  readonly lbAuth?: { readonly username: string; readonly passwordFile: string };
}

const HOST_PORT = /^[A-Za-z0-9][A-Za-z0-9.\-]*:\d{1,5}$/;
const DNS_NAME = /^[A-Za-z0-9][A-Za-z0-9.\-]*$/;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._\-]*$/;

/** Renders `template` with `options`; throws a `TypeError` listing every invalid option. */
export function renderPrometheusConfig(
  template: string,
  options: PrometheusConfigOptions,
): string {
  const problems: string[] = [];
  const scrape = options.scrapeIntervalSeconds ?? 5;
  const refresh = options.refreshIntervalSeconds ?? 5;
  const selfTarget = options.selfTarget ?? "localhost:9090";
  const routerService = options.routerService ?? "mcp-router";
  const intervals = [["scrape interval", scrape], ["refresh interval", refresh]] as const;
  for (const [name, value] of intervals) {
    if (!Number.isInteger(value) || value < 1 || value > 600) {
      problems.push(`${name} must be a whole number of seconds from 1 to 600, got ${value}`);
    }
  }
  try {
    const url = new URL(options.sdUrl);
    if (url.protocol !== "http:") throw new Error("not http");
  } catch {
    problems.push(`the discovery URL must be an http URL, got "${options.sdUrl}"`);
  }
  const hostPorts = [selfTarget, ...("targets" in options.lb ? options.lb.targets : [])];
  for (const value of hostPorts) {
    if (!HOST_PORT.test(value)) problems.push(`"${value}" is not a host:port`);
  }
  if ("dnsNames" in options.lb) {
    for (const name of options.lb.dnsNames) {
      if (!DNS_NAME.test(name)) problems.push(`"${name}" is not a DNS name`);
    }
    if (!Number.isInteger(options.lb.port) || options.lb.port < 1 || options.lb.port > 65535) {
      problems.push(`HAProxy's port must be from 1 to 65535, got ${options.lb.port}`);
    }
  }
  if (!SERVICE_NAME.test(routerService)) problems.push(`"${routerService}" is not a service name`);
  if (options.lbAuth !== undefined && !options.lbAuth.passwordFile.startsWith("/")) {
    problems.push(
      `the password file must be an absolute path, got "${options.lbAuth.passwordFile}"`,
    );
  }
  if (problems.length > 0) {
    throw new TypeError(`Cannot render the Prometheus config: ${problems.join("; ")}`);
  }

  const handlebars = Handlebars.create();
  // JSON strings are valid YAML scalars: no value can break out of its place.
  handlebars.registerHelper("json", (value: unknown) => JSON.stringify(value));
  const render = handlebars.compile(template, { noEscape: true, strict: true });
  return render({
    scrapeInterval: `${scrape}s`,
    // A scrape must end before the next one starts.
    scrapeTimeout: `${Math.max(1, scrape - 1)}s`,
    refreshInterval: `${refresh}s`,
    selfTarget,
    sdUrl: options.sdUrl,
    routerServiceRegex: routerService.replaceAll(".", "\\."),
    lb: {
      dnsNames: "dnsNames" in options.lb ? options.lb.dnsNames : null,
      port: "dnsNames" in options.lb ? options.lb.port : null,
      targets: "targets" in options.lb ? options.lb.targets : null,
    },
    lbAuth: options.lbAuth ?? null,
  });
}
