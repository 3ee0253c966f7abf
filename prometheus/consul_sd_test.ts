import assert from "node:assert/strict";
import { consulTargetGroups, metaLabel } from "./consul_sd.ts";

Deno.test("consulTargetGroups() labels instances as consul_sd_configs does", () => {
  const groups = consulTargetGroups([{
    Node: { Node: "consul", Address: "10.0.0.2" },
    Service: {
      ID: "echo-agent-t1",
      Service: "agent-echo",
      Address: "10.0.1.7",
      Port: 50052,
      Tags: ["platform", "agent"],
      Meta: { metrics_port: "51052", program: "echo-agent", "odd-key_x": "v" },
    },
    Checks: [{ Status: "passing" }, { Status: "passing" }],
  }], "agent-echo");
  assert.deepEqual(groups, [{
    targets: ["10.0.1.7:50052"],
    labels: {
      __meta_consul_service: "agent-echo",
      __meta_consul_service_id: "echo-agent-t1",
      __meta_consul_service_address: "10.0.1.7",
      __meta_consul_service_port: "50052",
      __meta_consul_address: "10.0.0.2",
      __meta_consul_node: "consul",
      __meta_consul_health: "passing",
      __meta_consul_tags: ",platform,agent,",
      __meta_consul_service_metadata_metrics_port: "51052",
      __meta_consul_service_metadata_program: "echo-agent",
      __meta_consul_service_metadata_odd_key_x: "v",
    },
  }]);
});

Deno.test("consulTargetGroups() uses the node address and reports the worst check", () => {
  const [group] = consulTargetGroups([{
    Node: { Node: "n1", Address: "10.0.0.3" },
    Service: { ID: "x-1", Service: "x", Address: "", Port: 80 },
    Checks: [{ Status: "passing" }, { Status: "critical" }],
  }], "x");
  assert.deepEqual(group.targets, ["10.0.0.3:80"]);
  assert.equal(group.labels.__meta_consul_health, "critical");
  assert.equal(group.labels.__meta_consul_tags, "");
});

Deno.test("consulTargetGroups() leaves out entries it cannot trust", async (t) => {
  const cases: [string, unknown][] = [
    ["no Service", {}],
    ["a port out of range", {
      Service: { ID: "a", Service: "s", Address: "1.2.3.4", Port: 70000 },
    }],
    ["a port as text", { Service: { ID: "a", Service: "s", Address: "1.2.3.4", Port: "80" } }],
    ["an address with a path", { Service: { ID: "a", Service: "s", Address: "h/x", Port: 80 } }],
    ["an address with a space", { Service: { ID: "a", Service: "s", Address: "h x", Port: 80 } }],
    ["an ID that is no string", { Service: { ID: 7, Service: "s", Address: "h", Port: 80 } }],
    ["a host name", { Service: { ID: "a", Service: "s", Address: "h", Port: 80 } }],
    ["a runtime API command", {
      Service: { ID: "a", Service: "s", Address: "1.2.3.4;shutdown frontend mcp;", Port: 80 },
    }],
    ["meta that is not strings", {
      Service: { ID: "a", Service: "s", Address: "1.2.3.4", Port: 80, Meta: { n: 3 } },
    }],
    ["another service's entry", {
      Service: { ID: "a", Service: "t", Address: "1.2.3.4", Port: 80 },
    }],
  ];
  for (const [name, entry] of cases) {
    await t.step(name, () => {
      assert.deepEqual(consulTargetGroups([entry], "s"), []);
    });
  }
});

Deno.test("metaLabel() makes any key a label name", () => {
  assert.equal(metaLabel("metrics_port"), "__meta_consul_service_metadata_metrics_port");
  assert.equal(metaLabel("a-b.c/d"), "__meta_consul_service_metadata_a_b_c_d");
});
