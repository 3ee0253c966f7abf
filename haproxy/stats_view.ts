/**
 * HAProxy's view of its servers, read from the stats page's CSV (`/stats;csv`) as published: what
 * `status` and `deploy` compare with Consul (`ops/plan/haproxy_view.ts`).
 */

/** A server's state as HAProxy reports it, reduced to the four an operator acts on. */
export type HaproxyState = "UP" | "DOWN" | "DRAIN" | "MAINT";

/** One server line of a backend. */
export interface HaproxyServer {
  /** The slot name, e.g. `r3`. */
  readonly name: string;
  /** `address:port` it sends to. */
  readonly address: string;
  readonly state: HaproxyState;
}

/** What the ops tool could read from HAProxy. */
export type HaproxyView =
  | { readonly reachable: true; readonly servers: readonly HaproxyServer[] }
  | { readonly reachable: false; readonly error: string };

/** Maps HAProxy's status text (`UP`, `UP 1/2`, `DOWN 1/2`, `NOLB`, `MAINT (via …)`, …). */
export function haproxyState(status: string): HaproxyState {
  const text = status.trim().toUpperCase();
  if (text.startsWith("MAINT")) return "MAINT";
  if (text.startsWith("DRAIN") || text.startsWith("NOLB")) return "DRAIN";
  // `UP 1/2` is still up (one check failed); `DOWN 1/2` still down (one check passed).
  if (text.startsWith("UP") || text === "NO CHECK") return "UP";
  return "DOWN";
}

/**
 * The servers of `backend` in a stats CSV (`/stats;csv` or `show stat`). Empty slots, parked at
 * `127.0.0.1:1` in maintenance, are left out.
 */
export function parseHaproxyServers(csv: string, backend: string): HaproxyServer[] {
  const lines = csv.split("\n").filter((line) => line.trim() !== "");
  if (lines.length === 0 || !lines[0].startsWith("# ")) {
    throw new Error("HAProxy's stats are not CSV (no header line)");
  }
  const header = lines[0].slice(2).split(",");
  const column = (name: string) => header.indexOf(name);
  const [proxy, server, status, addr] = ["pxname", "svname", "status", "addr"].map(column);
  if ([proxy, server, status, addr].includes(-1)) {
    throw new Error("HAProxy's stats CSV lacks one of pxname, svname, status, addr");
  }
  const servers: HaproxyServer[] = [];
  for (const line of lines.slice(1)) {
    const cells = line.split(",");
    if (cells[proxy] !== backend || ["FRONTEND", "BACKEND"].includes(cells[server])) continue;
    const state = haproxyState(cells[status] ?? "");
    const address = cells[addr] ?? "";
    if (state === "MAINT" && (address === "" || address.endsWith(":1"))) continue;
    servers.push({ name: cells[server], address, state });
  }
  return servers;
}

const TIMEOUT_MS = 3_000;

/** Options of {@linkcode readHaproxyView}. */
export interface ReadHaproxyViewOptions {
  /** `user:password` for the stats page's basic auth, when it has one. */
  credentials?: string;
}

/** HAProxy's servers of `backend`; an unreachable or refusing stats page is a view, not a throw. */
export async function readHaproxyView(
  statsUrl: string,
  backend: string,
  options: ReadHaproxyViewOptions = {},
): Promise<HaproxyView> {
  const headers: Record<string, string> = {};
  if (options.credentials) headers.authorization = `Basic ${btoa(options.credentials)}`;
  const url = `${statsUrl.replace(/\/+$/, "")};csv`;
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const text = await response.text();
    if (!response.ok) {
      const hint = response.status === 401 ? " (set PLATFORM_STATS_AUTH_FILE)" : "";
      return { reachable: false, error: `"${url}" answered ${response.status}${hint}` };
    }
    return { reachable: true, servers: parseHaproxyServers(text, backend) };
  } catch (error) {
    return { reachable: false, error: `"${url}": ${(error as Error).message}` };
  }
}
