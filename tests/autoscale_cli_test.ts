/**
 * `./platform autoscale` as a real CLI process against real Consul and the real Docker engine, on
 * a stack name nothing uses: reads only (the engine is shared); pause and resume stop at the
 * check that the service is deployed, or at `--dry-run`.
 */
import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";

const MAIN = new URL("../ops/main.ts", import.meta.url).pathname;
const STACK = "autoscale-cli-none";

async function cli(args: string[], consulUrl = "http://127.0.0.1:1") {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "--stack", STACK, ...args],
    env: { PLATFORM_CONSUL_URL: consulUrl },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

async function putStatus(consulUrl: string, body: string): Promise<void> {
  const response = await fetch(`${consulUrl}/v1/kv/platform/autoscaler/status`, {
    method: "PUT",
    body,
  });
  await response.body?.cancel();
  assert.ok(response.ok);
}

Deno.test("autoscale status reads the stack's labels and the autoscaler's status", async (t) => {
  const consul = await startConsulDev();
  try {
    await t.step("no status yet: says so, exit 0", async () => {
      const run = await cli(["autoscale", "status"], consul.url);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /no service of stack "autoscale-cli-none" has autoscaling labels/);
      assert.match(run.stdout, /! the autoscaler has written no status/);
      assert.match(run.stdout, /Prometheus: http:\/\/127\.0\.0\.1:9090\//);
    });

    await t.step("--json, with a failed evaluation in the status", async () => {
      await putStatus(
        consul.url,
        JSON.stringify({
          at: Date.now(),
          error: "Cannot list Swarm services",
          intervalSeconds: 15,
          services: [],
        }),
      );
      const run = await cli(
        ["--json", "--prometheus-port", "19090", "autoscale", "status"],
        consul.url,
      );
      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout);
      assert.deepEqual(result.services, []);
      assert.equal(result.prometheus, "http://127.0.0.1:19090");
      assert.match(result.note, /last evaluation failed: Cannot list Swarm services/);
    });

    await t.step("a malformed status is an error naming the key, exit 1", async () => {
      await putStatus(consul.url, '{"at":"soon"}');
      const run = await cli(["autoscale", "status"], consul.url);
      assert.equal(run.code, 1);
      assert.match(
        run.stderr,
        /error: Cannot read the autoscaler's status in Consul key "platform\/autoscaler\/status": .*services is not a list/,
      );
    });
  } finally {
    await consul.stop();
  }

  await t.step("Consul unreachable: exit 1 with the address", async () => {
    const run = await cli(["autoscale", "status"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /error: Cannot reach Consul at "http:\/\/127\.0\.0\.1:1"/);
  });
});

Deno.test("autoscale pause and resume: usage errors, dry run, a stack not deployed", async (t) => {
  const cases: [string, string[], number, RegExp, "stdout" | "stderr"][] = [
    [
      "no service",
      ["autoscale", "pause"],
      2,
      /error: .*missing required argument 'service'/,
      "stderr",
    ],
    [
      "unknown service",
      ["autoscale", "resume", "nosuch"],
      2,
      /error: Unknown service "nosuch"/,
      "stderr",
    ],
    [
      "dry run names the label change",
      ["autoscale", "pause", "echo", "--dry-run"],
      0,
      /would run docker service update --label-add platform\.autoscale\.paused=true autoscale-cli-none_echo-agent/,
      "stdout",
    ],
    [
      "resume dry run removes the label",
      ["autoscale", "resume", "echo", "--dry-run"],
      0,
      /--label-rm platform\.autoscale\.paused autoscale-cli-none_echo-agent/,
      "stdout",
    ],
    [
      "a service that is not deployed",
      ["autoscale", "pause", "echo"],
      1,
      /error: Cannot pause "echo-agent": "autoscale-cli-none_echo-agent" is not deployed/,
      "stderr",
    ],
    ["an unknown subcommand", ["autoscale", "stop", "echo"], 2, /error: /, "stderr"],
  ];
  for (const [name, args, code, pattern, stream] of cases) {
    await t.step(name, async () => {
      const run = await cli(args);
      assert.equal(run.code, code, `${run.stdout}\n${run.stderr}`);
      assert.match(run[stream], pattern);
    });
  }
});
