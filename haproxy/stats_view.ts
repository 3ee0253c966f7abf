/** Reads HAProxy's view of its servers from the stats page's CSV (`/stats;csv`), as published. */
import { type HaproxyView, parseHaproxyServers } from "../plan/haproxy_view.ts";

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
