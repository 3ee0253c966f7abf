/**
 * `cluster` for real: a 2-node Swarm on this machine (its engine and one `dockerd` in the network
 * namespace `platform-2`), made twice (idempotent), shown, cut, healed and removed, through the real
 * CLI. Needs root and the Docker engine, as `./platform test` has them. It starts from `cluster down`
 * so a cluster left by an earlier run does not change what it sees, and ends with `down`.
 */
import assert from "node:assert/strict";
import { CLUSTER_NETWORK, FORWARD_RULES, nodeLayout } from "../ops/plan/cluster.ts";
import { E2E } from "./helpers/e2e_gate.ts";
import { eventually } from "./helpers/poll.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const NODE = nodeLayout(2);
/** Swarm marks a silent node Down after a few missed heartbeats (5 s each); a bound, not a wait. */
const DOWN_WITHIN_MS = 90_000;

interface OpsRun {
  code: number;
  stdout: string;
  stderr: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** Runs the real CLI with `--json`. */
async function ops(...args: string[]): Promise<OpsRun> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}ops/main.ts`, "--json", ...args],
    cwd: ROOT,
    env: { PLATFORM_TIMEOUT: "180" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  let json: unknown;
  try {
    json = stdout.trim() === "" ? undefined : JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code: output.code, stdout, stderr: new TextDecoder().decode(output.stderr), json };
}

function explain(run: OpsRun): string {
  return `exit ${run.code}\nstdout: ${run.stdout.slice(-2000)}\nstderr: ${run.stderr.slice(-3000)}`;
}

async function run(program: string, ...args: string[]) {
  const output = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" })
    .output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

// deno-lint-ignore no-explicit-any
function node(status: OpsRun, name: string): any {
  return status.json?.nodes?.find((entry: { name: string }) => entry.name === name);
}

/**
 * The source address of the host's packets to the node: it must be the manager's advertised
 * address, or the node drops the overlay networks' VXLAN packets from node 1.
 */
async function sourceToNode(): Promise<string | undefined> {
  const route = await run("ip", "-j", "route", "get", NODE.address);
  return route.code === 0 ? JSON.parse(route.stdout)[0]?.prefsrc : undefined;
}

/** Whether a TCP connection to the node's Swarm gossip port opens (the node is reachable). */
async function reachable(): Promise<boolean> {
  try {
    const connection = await Deno.connect({ hostname: NODE.address, port: 7946 });
    connection.close();
    return true;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "cluster up, status, cut, heal and down on a real 2-node Swarm",
  ignore: !E2E,
}, async (t) => {
  const before = JSON.parse((await run("docker", "info", "--format", "{{json .Swarm}}")).stdout);
  let selfName = "";

  await t.step("down first: no node is left from an earlier run", async () => {
    const down = await ops("cluster", "down");
    assert.equal(down.code, 0, explain(down));
  });

  await t.step("bad command lines are usage errors", async () => {
    for (
      const [args, pattern] of [
        [["cluster", "up", "--nodes", "0"], /^error: Invalid node count "0"/],
        [["cluster", "up", "--nodes", "two"], /^error: Invalid node count "two"/],
        [["cluster", "cut", "nope"], /^error: Unknown node "nope"; the nodes are: /],
      ] as [string[], RegExp][]
    ) {
      const result = await ops(...args);
      assert.equal(result.code, 2, explain(result));
      assert.match(result.stderr.trim(), pattern);
      assert.equal(result.stdout, "");
    }
  });

  await t.step(
    "up --nodes 2 makes a worker in platform-2 and waits until it is Ready",
    async () => {
      const up = await ops("cluster", "up", "--nodes", "2");
      assert.equal(up.code, 0, explain(up));
      assert.equal(up.json.nodes.length, 2, explain(up));
      assert.ok(up.json.changes.length > 0, explain(up));
      assert.match(up.stderr, /join the Swarm at .*:2377 as a worker/);
      for (const entry of up.json.nodes) assert.equal(entry.state, "Ready", explain(up));
      selfName = up.json.nodes[0].name;
    },
  );

  await t.step("a second up changes nothing", async () => {
    const again = await ops("cluster", "up", "--nodes", "2");
    assert.equal(again.code, 0, explain(again));
    assert.deepEqual(again.json.changes, []);
    assert.equal(again.json.nodes.length, 2);
  });

  await t.step(
    "status shows both nodes Ready with their addresses, namespace and socket",
    async () => {
      const status = await ops("cluster", "status");
      assert.equal(status.code, 0, explain(status));
      assert.equal(status.json.nodes.length, 2, explain(status));
      const [self, worker] = status.json.nodes;
      assert.deepEqual(
        { ...self, id: undefined, address: undefined },
        {
          name: selfName,
          index: 1,
          id: undefined,
          role: "manager",
          availability: "Active",
          state: "Ready",
          address: undefined,
          namespace: null,
          socket: self.socket,
          cut: false,
        },
      );
      assert.equal(self.address, before.NodeAddr);
      assert.match(self.socket, /^unix:\/\//);
      assert.deepEqual({ ...worker, id: undefined }, {
        name: "platform-2",
        index: 2,
        id: undefined,
        role: "worker",
        availability: "Active",
        state: "Ready",
        address: "10.213.2.2",
        namespace: "platform-2",
        socket: "unix:///run/platform-cluster/platform-2.sock",
        cut: false,
      });
      // The node's own engine answers on its socket and calls itself platform-2.
      const name = await run("docker", "-H", worker.socket, "info", "--format", "{{.Name}}");
      assert.equal(name.stdout.trim(), "platform-2", name.stderr);
      assert.equal(await reachable(), true);
    },
  );

  await t.step("node 1 cannot be cut", async () => {
    const cut = await ops("cluster", "cut", selfName);
    assert.equal(cut.code, 2, explain(cut));
    assert.match(cut.stderr, /machine's own engine \(node 1\) and cannot be cut/);
  });

  await t.step(
    "cut platform-2: nothing reaches it, the manager sees it Down, its engine runs on",
    async () => {
      const cut = await ops("cluster", "cut", "platform-2");
      assert.equal(cut.code, 0, explain(cut));
      assert.equal(cut.json.cut, true);
      assert.equal(await reachable(), false);
      const status = await eventually(
        "the manager to see platform-2 Down",
        () => ops("cluster", "status"),
        (result) => node(result, "platform-2")?.state === "Down",
        { timeoutMs: DOWN_WITHIN_MS, intervalMs: 100 },
      );
      assert.equal(node(status, "platform-2").cut, true);
      const info = await run("docker", "-H", NODE.dockerHost, "info", "--format", "{{.Name}}");
      assert.equal(info.code, 0, info.stderr);
    },
  );

  await t.step("heal platform-2: it is Ready again and reachable", async () => {
    const heal = await ops("cluster", "heal", "platform-2");
    assert.equal(heal.code, 0, explain(heal));
    const status = await ops("cluster", "status");
    assert.equal(node(status, "platform-2").state, "Ready", explain(status));
    assert.equal(node(status, "platform-2").cut, false);
    assert.equal(await reachable(), true);
    assert.equal(await sourceToNode(), before.NodeAddr, "heal routes from the manager's address");
  });

  await t.step(
    "down leaves the machine's engine alone, the Swarm it was, and nothing else",
    async () => {
      const down = await ops("cluster", "down");
      assert.equal(down.code, 0, explain(down));
      assert.deepEqual(down.json.removed, ["platform-2"]);
      const status = await ops("cluster", "status");
      assert.equal(status.code, 0, explain(status));
      assert.deepEqual(status.json.nodes.map((entry: { name: string }) => entry.name), [selfName]);
      const after = JSON.parse((await run("docker", "info", "--format", "{{json .Swarm}}")).stdout);
      assert.equal(after.NodeID, before.NodeID);
      assert.equal(after.LocalNodeState, "active");

      assert.equal((await run("ip", "netns", "list")).stdout.includes("platform-"), false);
      const links = (await run("ip", "-o", "link", "show")).stdout;
      assert.equal(/: pf-[^:]*:/.test(links), false, links);
      const routes = (await run("ip", "route", "show", "exact", CLUSTER_NETWORK)).stdout;
      assert.equal(routes.trim(), "", `a route for ${CLUSTER_NETWORK} is left`);
      for (const rule of FORWARD_RULES) {
        const check = await run("iptables", "-w", "5", "-C", "FORWARD", ...rule);
        assert.equal(check.code, 1, `the rule ${rule.join(" ")} is left: ${check.stderr}`);
      }
      for (
        const path of [NODE.dataRoot, NODE.execRoot, NODE.socketPath, NODE.pidFile, NODE.logFile]
      ) {
        assert.equal(await exists(path), false, `${path} is left`);
      }
      // `find`, not Deno.readDir: Deno lets only --allow-all read /sys, and tests run with the
      // permissions deno.json declares.
      const cgroups = await run(
        "find",
        "/sys/fs/cgroup",
        "-maxdepth",
        "3",
        "-path",
        "*/platform-cluster/platform-2",
      );
      assert.equal(cgroups.stdout.trim(), "", `a cgroup of the node is left: ${cgroups.stdout}`);
      const mounts = (await run("cat", "/proc/self/mountinfo")).stdout;
      assert.equal(mounts.includes("/platform-cluster/"), false, "a mount of the node is left");
      const processes = (await run("ps", "-eo", "args")).stdout;
      assert.equal(processes.includes(NODE.execRoot), false, "a process of the node is left");
    },
  );

  await t.step("a second down has nothing to remove", async () => {
    const down = await ops("cluster", "down");
    assert.equal(down.code, 0, explain(down));
    assert.deepEqual(down.json.changes, []);
  });
});
