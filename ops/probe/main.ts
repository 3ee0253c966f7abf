/**
 * The probe: runs in a short-lived container on the stack's overlay network, calls one service's
 * tool through the discovery client at a fixed rate, checks every answer, and prints one JSON
 * summary on stdout. Bounded by `--duration` and by a call count.
 *
 *   deno run … ops/probe/main.ts --service agent-echo --rate 50 --duration 20
 */
import {
  consulClientFromSettings,
  parseConsulSettings,
} from "../../services/runtime/consul/settings.ts";
import { parseArgs } from "node:util";
import { ServiceDiscovery } from "../../services/runtime/discovery.ts";
import { createLogger } from "../../services/runtime/logger.ts";
import { summarizeCalls } from "../plan/stats.ts";
import { PROBE_CALLS } from "./calls.ts";
import { delay } from "../../services/runtime/delay.ts";

const MAX_CALLS = 100_000;
const CALL_DEADLINE_MS = 10_000;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    service: { type: "string" },
    rate: { type: "string", default: "20" },
    duration: { type: "string", default: "10" },
    consul: { type: "string", default: Deno.env.get("CONSUL_HTTP_ADDR") ?? "http://consul:8500" },
  },
});
const service = values.service ?? "";
const call = PROBE_CALLS[service];
const rate = Number(values.rate);
const durationS = Number(values.duration);
if (!call || !(rate > 0 && rate <= 1000) || !(durationS > 0 && durationS <= 3600)) {
  console.error(
    `error: usage: probe --service <${Object.keys(PROBE_CALLS).join("|")}> --rate R (1..1000) ` +
      `--duration S (1..3600)`,
  );
  Deno.exit(2);
}

const logger = createLogger({ level: "warn", fields: { program: "probe" } });
const consul = await consulClientFromSettings(
  parseConsulSettings({ ...Deno.env.toObject(), CONSUL_HTTP_ADDR: values.consul }, {
    defaultAddress: values.consul,
  }).settings,
);
const discovery = new ServiceDiscovery(service, { consul, logger });
try {
  await discovery.ready(15_000);
} catch (error) {
  console.error(`error: Cannot discover "${service}" in Consul at "${values.consul}": ${error}`);
  Deno.exit(1);
}

// The ops tool and the tests wait for this line before disturbing the service.
console.error(`probe: calling ${service} on ${discovery.endpoints().length} instance(s)`);

const latencies: number[] = [];
const instances: Record<string, number> = {};
const errors: Record<string, number> = {};
let failures = 0;
const total = Math.min(MAX_CALLS, Math.ceil(rate * durationS));
const started = performance.now();
const pending: Promise<void>[] = [];

async function one(n: number): Promise<void> {
  const begin = performance.now();
  try {
    const { response } = await discovery.invoke(
      { tool: call.tool, argumentsJson: JSON.stringify(call.args(n)), requestId: `probe-${n}` },
      { deadlineMs: CALL_DEADLINE_MS, idempotent: true },
    );
    const result = JSON.parse(response.resultJson) as Record<string, unknown>;
    const problem = call.verify(n, result);
    if (problem) throw new Error(problem);
    latencies.push(performance.now() - begin);
    const instance = String(result.instance_id ?? response.instanceId);
    // Tests wait for this line before disturbing an instance (the ops tool relays `probe:` lines).
    if (!(instance in instances)) console.error(`probe: first answer from ${instance}`);
    instances[instance] = (instances[instance] ?? 0) + 1;
  } catch (error) {
    failures++;
    const message = error instanceof Error ? error.message : String(error);
    errors[message] = (errors[message] ?? 0) + 1;
  }
}

// Open loop: call n starts at n / rate seconds whatever the answers, so slow answers show as latency.
for (let n = 0; n < total; n++) {
  const due = started + (n * 1000) / rate;
  const wait = due - performance.now();
  await delay(wait);
  pending.push(one(n));
}
await Promise.all(pending);
await discovery.close();

const summary = {
  service,
  tool: call.tool,
  rate,
  durationS: Math.round((performance.now() - started) / 10) / 100,
  ...summarizeCalls(latencies, failures),
  instances,
  errors,
};
console.log(JSON.stringify(summary));
Deno.exit(failures === 0 ? 0 : 1);
