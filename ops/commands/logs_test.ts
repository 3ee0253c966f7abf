import assert from "node:assert/strict";
import { fakeContext } from "../../tests/helpers/fake_ops.ts";
import { resolveService } from "../plan/services.ts";
import type { SwarmService } from "../plan/state.ts";
import { logsCommand } from "./logs.ts";
import { swarmService, swarmTask } from "../../tests/helpers/swarm_fixtures.ts";

const ECHO = resolveService("echo");
const WEATHER = resolveService("weather");

function deployed(name: string, letters: string[]): SwarmService {
  return swarmService(
    name,
    letters.length,
    letters.map((letter) =>
      swarmTask(letter, "running", "running", { containerId: `container-${letter}` })
    ),
  );
}

const LOGS: Record<string, string[]> = {
  "container-a": ["2026-01-01T00:00:01Z echo a1", "2026-01-01T00:00:04Z echo a2"],
  "container-b": ["2026-01-01T00:00:02Z echo b1"],
  "container-w": ["2026-01-01T00:00:03Z weather w1"],
};

function run() {
  return fakeContext({
    services: [ECHO, WEATHER],
    docker: {
      services: () =>
        Promise.resolve([deployed("echo-agent", ["a", "b"]), deployed("weather-tool", ["w"])]),
      containerLogs: (container: string) => Promise.resolve(LOGS[container]),
    },
  });
}

Deno.test("logs with no service merges every service's instances by time, each line prefixed", async (t) => {
  for (const name of [undefined, "all"]) {
    await t.step(name ?? "no service", async () => {
      const fake = run();
      const lines: string[] = [];
      await logsCommand(fake.context, name, {}, (line) => lines.push(line));
      const a = `echo-agent-${"a".repeat(25)}`;
      const b = `echo-agent-${"b".repeat(25)}`;
      const w = `weather-tool-${"w".repeat(25)}`;
      assert.deepEqual(lines, [
        `${a} | 2026-01-01T00:00:01Z echo a1`,
        `${b} | 2026-01-01T00:00:02Z echo b1`,
        `${w} | 2026-01-01T00:00:03Z weather w1`,
        `${a} | 2026-01-01T00:00:04Z echo a2`,
      ]);
    });
  }
});

Deno.test("logs of one service reads only its instances", async () => {
  const fake = run();
  const lines: string[] = [];
  await logsCommand(fake.context, "weather", {}, (line) => lines.push(line));
  assert.deepEqual(lines, [`weather-tool-${"w".repeat(25)} | 2026-01-01T00:00:03Z weather w1`]);
  const read = fake.calls.filter((call) => call.name === "docker.containerLogs");
  assert.deepEqual(read.map((call) => call.args[0]), ["container-w"]);
});

Deno.test("logs --follow of every service prefixes each service's lines with the instance", async () => {
  const lines: string[] = [];
  const fake = fakeContext({
    services: [ECHO, WEATHER],
    docker: {
      services: () =>
        Promise.resolve([deployed("echo-agent", ["a"]), deployed("weather-tool", ["w"])]),
      serviceLogs: (service: string, options: { onLine(line: string): void }) => {
        const [name, letter] = service === "st_echo-agent" ? ["echo-agent", "a"] : [
          "weather-tool",
          "w",
        ];
        options.onLine(`2026-01-01T00:00:01Z st_${name}.1.${letter.repeat(25)}@node | hello`);
        return Promise.resolve();
      },
    },
  });
  await logsCommand(fake.context, undefined, { follow: true }, (line) => lines.push(line));
  assert.deepEqual(lines.sort(), [
    `echo-agent-${"a".repeat(25)} | 2026-01-01T00:00:01Z hello`,
    `weather-tool-${"w".repeat(25)} | 2026-01-01T00:00:01Z hello`,
  ]);
});
