/** itinerary-worker over real weather-tool instances found in a real Consul. */
import assert from "node:assert/strict";
import { startConsulDev } from "./helpers/consul_dev.ts";
import { connect } from "./helpers/capability_client.ts";
import { passingIds, startService } from "./helpers/service_process.ts";
import { eventually } from "./helpers/poll.ts";
import { delay } from "../services/runtime/delay.ts";

const TRIP = {
  destinations: [{ city: "Lisbon", days: 3 }, { city: "Porto", days: 2 }, {
    city: "Faro",
    days: 3,
  }],
  start_date: "2026-06-28",
};

Deno.test("plan_itinerary spreads weather over every instance and survives losing one", async (t) => {
  const consul = await startConsulDev();
  const weathers = ["weather-w1", "weather-w2"].map((id) =>
    startService("weather-tool", { consulUrl: consul.url, id })
  );
  const worker = startService("itinerary-worker", { consulUrl: consul.url, id: "itinerary-i1" });
  const client = connect(worker.address);
  try {
    await eventually(
      "2 weather passing",
      () => passingIds(consul.url, "tool-weather"),
      (ids) => ids.length === 2,
    );
    await eventually(
      "worker passing",
      () => passingIds(consul.url, "worker-itinerary"),
      (ids) => ids.length === 1,
    );

    await t.step("a plan uses both weather instances", async () => {
      // The worker's discovery may still be catching up with the second instance.
      const plan = await eventually(
        "a plan over both instances",
        async () => JSON.parse((await client.invoke("plan_itinerary", TRIP)).resultJson),
        (plan) => plan.weather_instances.length === 2,
      );
      assert.deepEqual(plan.weather_instances, ["weather-w1", "weather-w2"]);
      assert.equal(plan.total_days, 8);
      assert.equal(plan.end_date, "2026-07-05");
      assert.deepEqual(plan.days.map((day: { city: string }) => day.city), [
        "Lisbon",
        "Lisbon",
        "Lisbon",
        "Porto",
        "Porto",
        "Faro",
        "Faro",
        "Faro",
      ]);
      assert.equal(plan.instance_id, "itinerary-i1");
    });

    await t.step("InvokeStream sends one progress event per day, then the result", async () => {
      const events = await client.invokeStream("plan_itinerary", TRIP);
      const progress = events.filter((event) => event.progress);
      assert.equal(progress.length, 8);
      assert.deepEqual(progress.map((event) => event.progress!.progress), [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.ok(progress.every((event) => event.progress!.total === 8));
      assert.ok(events.at(-1)?.result);
      assert.equal(JSON.parse(events.at(-1)!.result!.resultJson).total_days, 8);
    });

    await t.step("killing one weather instance during 50 plans loses no plan", async () => {
      const results: string[] = [];
      const failures: string[] = [];
      let sent = 0;
      const calls: Promise<void>[] = [];
      for (let index = 0; index < 50; index++) {
        if (index === 10) weathers[0].kill("SIGKILL");
        sent++;
        calls.push(
          client.invoke("plan_itinerary", TRIP).then(
            (response) => void results.push(JSON.parse(response.resultJson).total_days),
            (error) => void failures.push(String(error)),
          ),
        );
        await delay(20);
      }
      await Promise.all(calls);
      assert.equal(sent, 50);
      assert.deepEqual(failures, []);
      assert.equal(results.length, 50);
    });
  } finally {
    client.close();
    await Promise.all([...weathers, worker].map((service) => service.stop("SIGKILL")));
    await consul.stop();
  }
});
