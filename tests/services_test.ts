/** Real Consul, real service processes: registration, health, shutdown, validation. */
import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { connect, grpcFailure } from "./helpers/capability_client.ts";
import {
  healthEntries,
  passingIds,
  type ServiceProcess,
  startService,
} from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";

Deno.test("echo-agent instances register, pass, leave on SIGTERM and fail on SIGKILL", async (t) => {
  const consul = await startConsulDev();
  const ids = ["echo-agent-a1", "echo-agent-b2", "echo-agent-c3"];
  const echoes = ids.map((id) => startService("echo-agent", { consulUrl: consul.url, id }));
  try {
    await t.step("three unique IDs under agent-echo turn passing", async () => {
      await eventually(
        "3 passing",
        () => passingIds(consul.url, "agent-echo"),
        (v) => v.length === 3,
      );
      const entries = await healthEntries(consul.url, "agent-echo");
      assert.deepEqual(entries.map((entry) => entry.Service.ID).sort(), ids);
      for (const entry of entries) {
        assert.deepEqual(entry.Service.Tags, ["platform", "agent"]);
        assert.equal(entry.Service.Meta.kind, "agent");
        assert.equal(entry.Service.Meta.tools, "echo");
        assert.match(entry.Service.Meta.version, /^\d+\.\d+\.\d+$/);
      }
    });

    await t.step("each instance answers with its own ID", async () => {
      for (const echo of echoes) {
        const client = connect(echo.address);
        const response = await client.invoke("echo", { message: "hi" });
        client.close();
        assert.deepEqual(JSON.parse(response.resultJson), {
          message: "hi",
          instance_id: echo.id,
          delay_ms: 0,
        });
      }
    });

    await t.step("SIGTERM deregisters before the process exits, exit code 0", async () => {
      const [victim] = echoes;
      let exitedFirst = false;
      victim.exited.then(() => exitedFirst = true);
      victim.kill("SIGTERM");
      let goneWhileRunning = false;
      await eventually("deregistration", async () => {
        const registered = (await healthEntries(consul.url, "agent-echo"))
          .some((entry) => entry.Service.ID === victim.id);
        if (!registered && !exitedFirst) goneWhileRunning = true;
        return registered;
      }, (registered) => !registered);
      const status = await victim.exited;
      assert.ok(goneWhileRunning, "the instance was still registered when the process exited");
      assert.equal(status.code, 0);
      assert.match(victim.output(), /"msg":"deregistered from Consul"/);
    });

    await t.step(
      "SIGKILL turns the check critical and the instance leaves the passing set",
      async () => {
        const victim = echoes[1];
        await victim.stop("SIGKILL");
        await eventually(
          "critical check",
          () => healthEntries(consul.url, "agent-echo"),
          (entries) =>
            entries.some((entry) =>
              entry.Service.ID === victim.id &&
              entry.Checks.some((check) => check.Status === "critical")
            ),
        );
        assert.deepEqual(await passingIds(consul.url, "agent-echo"), [echoes[2].id]);
      },
    );
  } finally {
    await Promise.all(echoes.map((echo) => echo.stop("SIGKILL")));
    await consul.stop();
  }
});

Deno.test("every service registers again after Consul restarts", async () => {
  const consul = await startConsulDev();
  const services: ServiceProcess[] = [
    startService("echo-agent", { consulUrl: consul.url, id: "echo-r1" }),
    startService("weather-tool", { consulUrl: consul.url, id: "weather-r1" }),
    startService("itinerary-worker", { consulUrl: consul.url, id: "itinerary-r1" }),
  ];
  const names = ["agent-echo", "tool-weather", "worker-itinerary"];
  async function allPassing(): Promise<number> {
    const counts = await Promise.all(names.map((name) => passingIds(consul.url, name)));
    return counts.filter((ids) => ids.length === 1).length;
  }
  try {
    await eventually("all passing", allPassing, (count) => count === 3);
    await consul.restart();
    assert.equal((await passingIds(consul.url, "agent-echo")).length, 0);
    await eventually("all passing again", allPassing, (count) => count === 3);
    for (const service of services) assert.match(service.output(), /"msg":"registered again"/);
  } finally {
    await Promise.all(services.map((service) => service.stop("SIGKILL")));
    await consul.stop();
  }
});

Deno.test("a service keeps serving while Consul is unreachable, then registers", async () => {
  const consul = await startConsulDev();
  await consul.stop();
  const echo = startService("echo-agent", { consulUrl: consul.url, id: "echo-late" });
  const client = connect(echo.address);
  try {
    const response = await eventually(
      "echo answers",
      () => client.invoke("echo", { message: "no consul" }),
      () => true,
    );
    assert.equal(JSON.parse(response.resultJson).message, "no consul");
    await eventually(
      "a retry warning",
      () => Promise.resolve(echo.output()),
      (out) => out.includes("cannot reach Consul, retrying"),
    );
    await consul.restart();
    await eventually(
      "passing",
      () => passingIds(consul.url, "agent-echo"),
      (ids) => ids.length === 1,
    );
  } finally {
    client.close();
    await echo.stop("SIGKILL");
    await consul.stop();
  }
});

Deno.test("tools reject bad arguments naming the field, and unknown tools", async (t) => {
  const consul = await startConsulDev();
  const echo = startService("echo-agent", { consulUrl: consul.url, id: "echo-v" });
  const weather = startService("weather-tool", { consulUrl: consul.url, id: "weather-v" });
  const itinerary = startService("itinerary-worker", { consulUrl: consul.url, id: "itinerary-v" });
  const clients = {
    echo: connect(echo.address),
    weather: connect(weather.address),
    itinerary: connect(itinerary.address),
  };
  try {
    for (const name of ["agent-echo", "tool-weather", "worker-itinerary"]) {
      await eventually(
        `${name} passing`,
        () => passingIds(consul.url, name),
        (ids) => ids.length === 1,
      );
    }
    const cases: [string, keyof typeof clients, string, unknown, RegExp][] = [
      ["echo without message", "echo", "echo", {}, /"message": is required/],
      ["echo delay too long", "echo", "echo", { message: "x", delay_ms: 10_001 }, /"delay_ms"/],
      ["echo delay not integer", "echo", "echo", { message: "x", delay_ms: 1.5 }, /"delay_ms"/],
      ["weather empty city", "weather", "get_weather", { city: "", date: "2026-05-01" }, /"city"/],
      [
        "weather bad date",
        "weather",
        "get_weather",
        { city: "Oslo", date: "2026-02-30" },
        /"date"/,
      ],
      ["weather date format", "weather", "get_weather", { city: "Oslo", date: "May 1" }, /"date"/],
      ["itinerary no start", "itinerary", "plan_itinerary", { destinations: [] }, /"start_date"/],
      [
        "itinerary no stops",
        "itinerary",
        "plan_itinerary",
        { destinations: [], start_date: "2026-05-01" },
        /"destinations"/,
      ],
      [
        "itinerary bad days",
        "itinerary",
        "plan_itinerary",
        { destinations: [{ city: "Rome", days: 0 }], start_date: "2026-05-01" },
        /"destinations\[0\]\.days"/,
      ],
      ["not JSON", "echo", "echo", "{oops", /"arguments_json": not valid JSON/],
    ];
    for (const [name, service, tool, args, expected] of cases) {
      await t.step(name, async () => {
        const failure = await grpcFailure(clients[service].invoke(tool, args));
        assert.equal(failure.code, "INVALID_ARGUMENT");
        assert.match(failure.details, expected);
      });
    }
    await t.step("unknown tool is NOT_FOUND", async () => {
      const failure = await grpcFailure(clients.echo.invoke("shout", { message: "x" }));
      assert.equal(failure.code, "NOT_FOUND");
      assert.match(failure.details, /Unknown tool "shout": agent-echo offers "echo"/);
    });
    await t.step("Describe returns the schemas the tools validate", async () => {
      const described = await clients.weather.describe();
      assert.equal(described.service, "tool-weather");
      assert.equal(described.instanceId, "weather-v");
      const schema = JSON.parse(described.tools[0].inputSchemaJson);
      assert.deepEqual(schema.required, ["city", "date"]);
    });
    await t.step("weather answers the same on every call", async () => {
      const first = await clients.weather.invoke("get_weather", {
        city: "Oslo",
        date: "2026-05-01",
      });
      const second = await clients.weather.invoke("get_weather", {
        city: "oslo",
        date: "2026-05-01",
      });
      const { instance_id: _a, city: _c1, ...a } = JSON.parse(first.resultJson);
      const { instance_id: _b, city: _c2, ...b } = JSON.parse(second.resultJson);
      assert.deepEqual(a, b);
    });
    await t.step("no healthy weather instance: UNAVAILABLE naming tool-weather", async () => {
      await weather.stop("SIGTERM");
      const failure = await grpcFailure(clients.itinerary.invoke("plan_itinerary", {
        destinations: [{ city: "Rome", days: 1 }],
        start_date: "2026-05-01",
      }));
      assert.equal(failure.code, "UNAVAILABLE");
      assert.match(failure.details, /tool-weather/);
    });
    await t.step("no log line per call at the default level; a failed dependency is logged", () => {
      const rpcLines = (service: ServiceProcess) =>
        service.output().split("\n").filter((line) => line.includes('"msg":"rpc"'))
          .map((line) => JSON.parse(line));
      // Every echo call above was refused for the caller's bad input: no line at info.
      assert.deepEqual(rpcLines(echo), []);
      const failed = rpcLines(itinerary).filter((line) => line.outcome === "UNAVAILABLE");
      assert.equal(failed.length, 1);
      assert.equal(failed[0].level, "warn");
      assert.equal(failed[0].tool, "plan_itinerary");
      assert.equal(typeof failed[0].durationMs, "number");
      assert.equal(typeof failed[0].requestId, "string");
    });
  } finally {
    for (const client of Object.values(clients)) client.close();
    await Promise.all([echo, weather, itinerary].map((service) => service.stop("SIGKILL")));
    await consul.stop();
  }
});

Deno.test("a bad environment exits 2 with a message", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "services/echo-agent/main.ts"],
    env: { PORT: "http", CHECK_INTERVAL: "often", GRPC_MAX_CONCURRENT_STREAMS: "-1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 2);
  assert.match(stderr, /error: echo-agent: Invalid configuration: PORT must be an integer/);
  assert.match(stderr, /CHECK_INTERVAL must be a duration/);
  assert.match(stderr, /GRPC_MAX_CONCURRENT_STREAMS must be an integer from 1 to 100000, got "-1"/);
});
