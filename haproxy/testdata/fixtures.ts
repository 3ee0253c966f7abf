/** Consul states shared by the render unit tests and the `haproxy -c` integration test. */

import type { ConsulHealthEntry, ConsulSnapshot, LbSettings } from "../model.ts";
import { DEFAULT_LB_SETTINGS } from "../model.ts";

/** Options of {@linkcode entry}. */
export interface EntryOptions {
  service?: string;
  status?: "passing" | "warning" | "critical";
  maintenance?: boolean;
  weights?: { Passing: number; Warning: number };
  meta?: Record<string, string>;
}

/** A Consul health entry for instance `id` on 127.0.0.1:`port`. */
export function entry(id: string, port: number, options: EntryOptions = {}): ConsulHealthEntry {
  const checks = [
    { CheckID: "serfHealth", Status: "passing" },
    { CheckID: `service:${id}`, Status: options.status ?? "passing", ServiceID: id },
  ];
  if (options.maintenance) {
    checks.push({ CheckID: `_service_maintenance:${id}`, Status: "critical", ServiceID: id });
  }
  return {
    Node: { Node: "node-1", Address: "127.0.0.1" },
    Service: {
      ID: id,
      Service: options.service ?? "mcp-router",
      Address: "127.0.0.1",
      Port: port,
      Tags: ["platform"],
      Meta: options.meta ?? {},
      Weights: options.weights ?? { Passing: 1, Warning: 1 },
    },
    Checks: checks,
  };
}

/** Settings of the golden configs: loopback only, a socket under /tmp. */
export const GOLDEN_SETTINGS: LbSettings = Object.freeze({
  ...DEFAULT_LB_SETTINGS,
  bindAddress: "127.0.0.1",
  runtimeSocket: "/tmp/lb-golden/admin.sock",
  minSlots: 4,
});

/** The golden cases, by file name. */
export const GOLDEN_CASES: Record<string, { snapshot: ConsulSnapshot; settings: LbSettings }> = {
  no_router: { snapshot: { routers: [], services: {} }, settings: GOLDEN_SETTINGS },
  one_router: {
    snapshot: { routers: [entry("router-a", 9001)], services: {} },
    settings: GOLDEN_SETTINGS,
  },
  three_routers: {
    snapshot: {
      routers: [entry("router-c", 9003), entry("router-a", 9001), entry("router-b", 9002)],
      services: {},
    },
    settings: GOLDEN_SETTINGS,
  },
  session_affinity: {
    snapshot: {
      routers: [entry("router-a", 9001), entry("router-b", 9002)],
      services: {},
    },
    settings: { ...GOLDEN_SETTINGS, balance: "hdr(mcp-session-id)" },
  },
  weights: {
    snapshot: {
      routers: [
        entry("router-a", 9001, { weights: { Passing: 1, Warning: 1 } }),
        entry("router-b", 9002, { weights: { Passing: 5, Warning: 1 } }),
        entry("router-c", 9003, { status: "warning", weights: { Passing: 10, Warning: 2 } }),
      ],
      services: {},
    },
    settings: { ...GOLDEN_SETTINGS, balance: "leastconn" },
  },
  one_critical: {
    snapshot: {
      routers: [
        entry("router-a", 9001),
        entry("router-b", 9002, { status: "critical" }),
        entry("router-c", 9003),
      ],
      services: {},
    },
    settings: GOLDEN_SETTINGS,
  },
  one_in_maintenance: {
    snapshot: {
      routers: [
        entry("router-a", 9001),
        entry("router-b", 9002, { maintenance: true }),
        entry("router-c", 9003),
      ],
      services: {},
    },
    settings: GOLDEN_SETTINGS,
  },
  // A benchmark's front door: no per-client limit and no per-router cap, so no tables either.
  limits_off: {
    snapshot: { routers: [entry("router-a", 9001)], services: {} },
    settings: {
      ...GOLDEN_SETTINGS,
      clientMaxConnections: 0,
      clientMaxRequestRate: 0,
      clientMaxConcurrent: 0,
      sourceMaxRequestRate: 0,
      serverMaxConnections: 0,
    },
  },
  // 50 calls/s with a burst of 125: a window of 2.5 s holding 125, Retry-After 3.
  limits_tuned: {
    snapshot: { routers: [entry("router-a", 9001)], services: {} },
    settings: {
      ...GOLDEN_SETTINGS,
      clientMaxRequestRate: 50,
      clientRateBurst: 125,
      clientMaxConcurrent: 8,
      sourceMaxRequestRate: 100,
      bodyTimeoutMs: 5_000,
      headerTimeoutMs: 2_500,
      queueTimeoutMs: 500,
    },
  },
  exposed_services_with_auth: {
    snapshot: {
      routers: [entry("router-a", 9001)],
      services: {
        echo: [
          entry("echo-1", 50051, { service: "echo", meta: { lb_port: "9101" } }),
          entry("echo-2", 50052, { service: "echo", meta: { lb_port: "9101" } }),
        ],
        weather: [
          entry("weather-1", 50061, {
            service: "weather",
            meta: { lb_port: "9102", lb_mode: "tcp" },
          }),
        ],
        quiet: [entry("quiet-1", 50071, { service: "quiet" })],
        // Asks for the MCP frontend's port: refused, not rendered.
        clash: [entry("clash-1", 50081, { service: "clash", meta: { lb_port: "8080" } })],
      },
    },
    settings: {
      ...GOLDEN_SETTINGS,
      balance: "source",
      statsAuth: { user: "admin", password: 's3cret "$HOME"' },
    },
  },
};
