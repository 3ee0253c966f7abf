/**
 * Basic auth on HAProxy's stats page and Prometheus endpoint, as the stack sets it up: the real
 * `lb sync` CLI reads `user:password` from the file `LB_STATS_AUTH_FILE` names (the Docker secret)
 * and runs real HAProxy with real Consul behind it.
 */
import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { type LbSyncProcess as LbSync, spawnLbSync } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { readHaproxyView } from "../haproxy/stats_view.ts";

const PATHS = ["/stats", "/metrics"];
// Quotes, a dollar sign, a backslash and a colon: the rendered config must carry them literally.
const USER = "ops";
const PASSWORD = `pa:ss "$HOME" \\ 'x'`;

/** A running `lb sync` process and the base URL of its stats frontend. */
interface LbSyncProcess extends LbSync {
  readonly statsUrl: string;
}

/** Starts `lb sync` on loopback with its config and sockets in `dir`, once HAProxy answers. */
async function startLbSync(
  consulUrl: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<LbSyncProcess> {
  const child = spawnLbSync(consulUrl, dir, env);
  let done = false;
  child.exited.then(() => done = true);
  const lb = { ...child, statsUrl: `http://127.0.0.1:${child.statsPort}` };
  try {
    await eventually("HAProxy's stats frontend to answer", async () => {
      if (done) throw new Error(`lb sync exited: ${child.output()}`);
      return await get(`${lb.statsUrl}/stats`);
    }, () => true);
  } catch (error) {
    await child.stop("SIGKILL");
    throw error;
  }
  return lb;
}

/** Runs `body` against a fresh Consul and `lb sync`, then checks that lb sync stops cleanly. */
async function withLbSync(
  env: (dir: string) => Promise<Record<string, string>>,
  body: (statsUrl: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lb-stats-auth-test-" });
  const consul = await startConsulDev();
  let lb: LbSyncProcess | null = null;
  try {
    lb = await startLbSync(consul.url, `${dir}/run`, await env(dir));
    await body(lb.statsUrl);
    const status = await lb.stop("SIGTERM");
    assert.equal(status.code, 0, lb.output());
  } finally {
    await lb?.stop("SIGKILL");
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

// Every request on its own connection: HAProxy's graceful stop keeps an idle keep-alive connection
// open until its next request (`option idle-close-on-response`), at most LB_HARD_STOP_AFTER.
const http = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

async function get(url: string, credentials?: string) {
  const headers: Record<string, string> = {};
  if (credentials !== undefined) headers.authorization = `Basic ${btoa(credentials)}`;
  const response = await fetch(url, { headers, client: http });
  const body = await response.text();
  return { status: response.status, body, challenge: response.headers.get("www-authenticate") };
}

Deno.test("stats and metrics ask for basic auth when lb sync is given credentials", async (t) => {
  async function secret(dir: string): Promise<Record<string, string>> {
    await Deno.writeTextFile(`${dir}/stats-auth`, `${USER}:${PASSWORD}\n`);
    return { LB_STATS_AUTH_FILE: `${dir}/stats-auth` };
  }
  await withLbSync(secret, async (statsUrl) => {
    for (const path of PATHS) {
      await t.step(`${path}: no credentials -> 401 with a challenge`, async () => {
        const answer = await get(`${statsUrl}${path}`);
        assert.equal(answer.status, 401);
        assert.match(answer.challenge ?? "", /^Basic realm="?stats"?/);
      });
      await t.step(`${path}: a wrong password or user -> 401`, async () => {
        assert.equal((await get(`${statsUrl}${path}`, `${USER}:wrong`)).status, 401);
        assert.equal((await get(`${statsUrl}${path}`, `admin:${PASSWORD}`)).status, 401);
        assert.equal((await get(`${statsUrl}${path}`, `${USER}:pa`)).status, 401);
      });
      await t.step(`${path}: the right credentials -> 200`, async () => {
        const answer = await get(`${statsUrl}${path}`, `${USER}:${PASSWORD}`);
        assert.equal(answer.status, 200);
        assert.match(answer.body, path === "/metrics" ? /^haproxy_process_/m : /Statistics Report/);
      });
    }
    await t.step("status reads HAProxy's view with the credentials, says why without", async () => {
      const view = await readHaproxyView(`${statsUrl}/stats`, "mcp-router", {
        credentials: `${USER}:${PASSWORD}`,
      });
      assert.equal(view.reachable, true, JSON.stringify(view));
      const refused = await readHaproxyView(`${statsUrl}/stats`, "mcp-router");
      assert.equal(refused.reachable, false);
      assert.match(refused.error ?? "", /answered 401 \(set PLATFORM_STATS_AUTH_FILE\)/);
    });
  });
});

Deno.test("stats and metrics are open when lb sync has no credentials", async (t) => {
  await withLbSync(() => Promise.resolve({}), async (statsUrl) => {
    for (const path of PATHS) {
      await t.step(`${path} -> 200 without credentials`, async () => {
        const answer = await get(`${statsUrl}${path}`);
        assert.equal(answer.status, 200);
        assert.equal(answer.challenge, null);
      });
    }
  });
});
