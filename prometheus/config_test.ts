import assert from "node:assert/strict";
import { parse } from "yaml";
import { renderPrometheusConfig } from "./config.ts";

const TEMPLATE = await Deno.readTextFile(
  new URL("../templates/prometheus.yml.hbs", import.meta.url),
);
const SD_URL = "http://127.0.0.1:9091/v1/targets";

interface ScrapeConfig {
  job_name: string;
  http_sd_configs?: { url: string; refresh_interval: string }[];
  dns_sd_configs?: { names: string[]; port: number; type: string }[];
  static_configs?: { targets: string[] }[];
  relabel_configs?: Record<string, unknown>[];
  basic_auth?: { username: string; password_file: string };
}

function jobs(text: string): Map<string, ScrapeConfig> {
  const document = parse(text) as { scrape_configs: ScrapeConfig[] };
  return new Map(document.scrape_configs.map((job) => [job.job_name, job]));
}

Deno.test("renderPrometheusConfig() for the stack: Consul instances, tasks.lb with auth, itself", () => {
  const text = renderPrometheusConfig(TEMPLATE, {
    sdUrl: SD_URL,
    lb: { dnsNames: ["tasks.lb"], port: 8404 },
    lbAuth: { username: 'o"ps', passwordFile: "/run/prometheus/lb_password" },
  });
  const document = parse(text) as { global: Record<string, string> };
  assert.deepEqual(document.global, {
    scrape_interval: "5s",
    scrape_timeout: "4s",
    evaluation_interval: "5s",
  });
  const byName = jobs(text);
  assert.deepEqual([...byName.keys()], ["prometheus", "services", "mcp-router", "haproxy"]);
  assert.deepEqual(byName.get("prometheus")?.static_configs, [{ targets: ["localhost:9090"] }]);
  const services = byName.get("services")!;
  assert.deepEqual(services.http_sd_configs, [{ url: SD_URL, refresh_interval: "5s" }]);
  assert.deepEqual(services.relabel_configs?.[0], {
    source_labels: ["__meta_consul_service_metadata_metrics_port"],
    regex: "[0-9]{1,5}",
    action: "keep",
  });
  assert.deepEqual(byName.get("mcp-router")?.relabel_configs?.[0], {
    source_labels: ["__meta_consul_service"],
    regex: "mcp-router",
    action: "keep",
  });
  const haproxy = byName.get("haproxy")!;
  assert.deepEqual(haproxy.dns_sd_configs, [{
    names: ["tasks.lb"],
    type: "A",
    port: 8404,
    refresh_interval: "5s",
  }]);
  assert.deepEqual(haproxy.basic_auth, {
    username: 'o"ps',
    password_file: "/run/prometheus/lb_password",
  });
  assert.equal(haproxy.static_configs, undefined);
});

Deno.test("renderPrometheusConfig() with fixed HAProxy targets and no auth", () => {
  const text = renderPrometheusConfig(TEMPLATE, {
    sdUrl: SD_URL,
    lb: { targets: ["127.0.0.1:8404", "127.0.0.1:9404"] },
    scrapeIntervalSeconds: 1,
    selfTarget: "127.0.0.1:9090",
    routerService: "mcp.router",
  });
  const byName = jobs(text);
  const haproxy = byName.get("haproxy")!;
  assert.deepEqual(haproxy.static_configs, [{ targets: ["127.0.0.1:8404", "127.0.0.1:9404"] }]);
  assert.equal(haproxy.basic_auth, undefined);
  assert.equal(haproxy.dns_sd_configs, undefined);
  assert.equal(byName.get("mcp-router")?.relabel_configs?.[0].regex, "mcp\\.router");
  assert.match(text, /scrape_timeout: "1s"/);
});

Deno.test("renderPrometheusConfig() refuses values that would not be what they seem", async (t) => {
  const cases: [string, Parameters<typeof renderPrometheusConfig>[1], RegExp][] = [
    [
      "a line break in a target",
      { sdUrl: SD_URL, lb: { targets: ["lb:8404\njob_name: x"] } },
      /"lb:8404\njob_name: x" is not a host:port/,
    ],
    [
      "a DNS name with a quote",
      { sdUrl: SD_URL, lb: { dnsNames: ['lb"'], port: 8404 } },
      /"lb"" is not a DNS name/,
    ],
    [
      "a zero interval, a relative file and a bad URL, listed together",
      {
        sdUrl: "file:///x",
        lb: { targets: [] },
        scrapeIntervalSeconds: 0,
        lbAuth: { username: "u", passwordFile: "pw" },
      },
      /scrape interval must be .*got 0; the discovery URL must be .*; the password file must be an absolute path/,
    ],
  ];
  for (const [name, options, expected] of cases) {
    await t.step(name, () => {
      assert.throws(() => renderPrometheusConfig(TEMPLATE, options), expected);
    });
  }
});
