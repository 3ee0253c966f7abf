/**
 * stack.yml as Docker's own compose parser reads it (`docker stack config`, client side: nothing is
 * deployed): Prometheus, the autoscaler and echo's autoscaling policy.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { parsePolicy } from "../services/autoscaler/policy.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: { type: string; source: string; target: string }[];
  ports?: { target: number; published: string | number; mode: string }[];
  healthcheck?: { test: string[] };
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
  cap_add?: string[];
  secrets?: { source: string; uid?: string; mode?: number }[];
  deploy?: {
    resources?: { limits?: { pids?: number } };
    replicas?: number;
    labels?: Record<string, string>;
    placement?: { constraints?: string[] };
    update_config?: { order?: string };
  };
}

Deno.test("stack.yml holds prometheus, the autoscaler and echo's policy, as Docker reads it", async () => {
  const output = await new Deno.Command("docker", {
    args: ["stack", "config", "-c", "stack.yml"],
    cwd: ROOT,
    env: { PROMETHEUS_PUBLISHED_PORT: "19090" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const merged = parse(new TextDecoder().decode(output.stdout)) as {
    services: Record<string, ComposeService>;
    volumes: Record<string, unknown>;
  };

  const prometheus = merged.services.prometheus;
  assert.deepEqual(
    prometheus.ports?.map((port) => [port.target, String(port.published), port.mode]),
    [
      [9090, "19090", "host"],
    ],
  );
  assert.deepEqual(prometheus.volumes?.map((volume) => volume.target), [
    "/prometheus",
    "/run/prometheus",
  ]);
  assert.ok("prometheus-data" in merged.volumes);
  assert.equal(prometheus.environment?.PROMETHEUS_RETENTION_TIME, "6h");
  assert.deepEqual(prometheus.deploy?.placement?.constraints, ["node.role == manager"]);
  assert.equal(prometheus.deploy?.update_config?.order, "stop-first");

  const autoscaler = merged.services.autoscaler;
  assert.equal(autoscaler.deploy?.replicas, 1);
  assert.deepEqual(autoscaler.deploy?.placement?.constraints, ["node.role == manager"]);
  assert.deepEqual(autoscaler.command, [
    "--allow-read=/var/run/docker.sock",
    "--allow-write=/var/run/docker.sock",
    "services/autoscaler/main.ts",
  ]);
  assert.deepEqual(autoscaler.volumes?.map((volume) => [volume.type, volume.source]), [
    ["bind", "/var/run/docker.sock"],
  ]);
  assert.equal(autoscaler.environment?.PROMETHEUS_URL, "http://prometheus:9090");

  // Least privilege, as Docker reads it: merge keys and anchors resolved, pids in the limits.
  for (const [name, service] of Object.entries(merged.services)) {
    assert.match(service.user ?? "", /^10001:/, `${name} runs as uid 10001`);
    assert.equal(service.read_only, true, `${name} has a read-only root file system`);
    assert.deepEqual(service.cap_drop, ["ALL"], `${name} drops every capability`);
    assert.equal(service.cap_add, undefined, `${name} adds no capability`);
    assert.ok((service.deploy?.resources?.limits?.pids ?? 0) > 0, `${name} has a pids limit`);
    for (const secret of service.secrets ?? []) {
      assert.deepEqual([secret.uid, secret.mode], ["10001", 256], `${name}: ${secret.source}`);
    }
  }

  // echo-agent keeps its own settings and gains a valid policy.
  const echo = merged.services["echo-agent"];
  assert.equal(echo.environment?.PORT, "50052");
  const policy = parsePolicy(echo.deploy?.labels ?? {}, "echo-agent");
  assert.equal(policy.kind, "valid");
  if (policy.kind === "valid") {
    assert.deepEqual([policy.policy.min, policy.policy.max, policy.policy.target], [1, 3, 20]);
  }
});
