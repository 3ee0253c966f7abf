import assert from "node:assert/strict";
import { parse } from "yaml";
import { PLATFORM_UID, renderStack } from "./stack.ts";

interface Service {
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
  cap_add?: string[];
  secrets?: { source: string; uid?: string; gid?: string; mode?: number }[];
  volumes?: (string | { type: string; target: string })[];
  deploy?: { resources?: { limits?: { pids?: number } } };
}

const TEMPLATE = await Deno.readTextFile(new URL("../../stack.yml", import.meta.url));

Deno.test("stack.yml runs every service unprivileged: uid 10001, read-only, no capability, pids limit", () => {
  const rendered = renderStack(TEMPLATE, {
    vars: { DOCKER_SOCKET_GID: "107" },
    images: {},
    replicas: {},
    statsAuthSecret: "agent-platform_lb-stats-auth",
  });
  const services = (parse(rendered) as { services: Record<string, Service> }).services;
  assert.ok(Object.keys(services).length >= 8);
  for (const [name, service] of Object.entries(services)) {
    assert.match(service.user ?? "", new RegExp(`^${PLATFORM_UID}:\\d+$`), name);
    assert.equal(service.read_only, true, name);
    assert.deepEqual(service.cap_drop, ["ALL"], name);
    assert.equal(service.cap_add, undefined, name);
    assert.ok((service.deploy?.resources?.limits?.pids ?? 0) > 0, `${name} has a pids limit`);
    for (const secret of service.secrets ?? []) {
      assert.deepEqual(
        [secret.uid, secret.gid, secret.mode],
        [PLATFORM_UID, PLATFORM_UID, 256],
        `${name}: ${secret.source}`,
      );
    }
  }
  assert.equal(services.autoscaler.user, "10001:107", "the autoscaler joins the socket's group");
  const tmpfs = (service: Service) =>
    (service.volumes ?? []).flatMap((volume) =>
      typeof volume === "object" && volume.type === "tmpfs" ? [volume.target] : []
    );
  assert.deepEqual(tmpfs(services.lb), ["/run/lb"]);
  assert.deepEqual(tmpfs(services.prometheus), ["/run/prometheus"]);
  assert.deepEqual(tmpfs(services.consul), ["/consul/run"]);
  assert.deepEqual(tmpfs(services["consul-agent"]), ["/consul/run"]);
});
