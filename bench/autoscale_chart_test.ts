import assert from "node:assert/strict";
import { renderAutoscaleChart, type TimelineRow } from "./autoscale_chart.ts";

Deno.test("renderAutoscaleChart() draws load, replicas and latency, escaping the title", () => {
  const rows: TimelineRow[] = [
    { t: 0, rate: 5, failures: 0, p50: 2, p99: 4, replicas: 1, serving: 1 },
    { t: 1, rate: 60, failures: 0, p50: 3, p99: 20, replicas: 1, serving: 1 },
    { t: 2, rate: 60, failures: 1, p50: null, p99: null, replicas: 3, serving: 3 },
  ];
  const svg = renderAutoscaleChart(rows, "echo <1 -> 3>");
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /echo &#60;1 -&#62; 3&#62;/);
  assert.equal(svg.match(/<polyline/g)?.length, 6);
  assert.match(svg, /load, calls\/s \(max 60\)/);
  assert.match(svg, /replicas \(max 3\)/);
  // A second without calls has no latency point: two points, not three.
  const p99 = svg.split("\n").filter((line) => line.includes('stroke="#9467bd"'))[0];
  assert.equal(p99.match(/\d+\.\d,\d+\.\d/g)?.length, 2);
});
