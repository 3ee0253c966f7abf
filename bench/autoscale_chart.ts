/** An SVG chart of an autoscaling run: load (calls/s), replicas and p99 latency per second. */

/** One second of the run. */
export interface TimelineRow {
  /** Seconds since the start. */
  t: number;
  /** Calls started in this second. */
  rate: number;
  failures: number;
  /** Latency percentiles of the calls that ended in this second, ms; null with no calls. */
  p50: number | null;
  p99: number | null;
  /** Replicas asked of Swarm. */
  replicas: number;
  /** Distinct instances that answered in this second. */
  serving: number;
}

const WIDTH = 900;
const HEIGHT = 240;
const PAD = 40;

function polyline(
  rows: readonly TimelineRow[],
  value: (row: TimelineRow) => number | null,
  max: number,
  top: number,
  color: string,
): string {
  const span = Math.max(1, rows.at(-1)?.t ?? 1);
  const points = rows.filter((row) => value(row) !== null).map((row) => {
    const x = PAD + (row.t / span) * (WIDTH - 2 * PAD);
    const y = top + HEIGHT - (Math.min(value(row)!, max) / max) * HEIGHT;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  return `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${
    points.join(" ")
  }"/>`;
}

function panel(
  rows: readonly TimelineRow[],
  index: number,
  title: string,
  lines: { value: (row: TimelineRow) => number | null; color: string; label: string }[],
): string {
  const top = PAD + index * (HEIGHT + PAD);
  const max = Math.max(1, ...rows.flatMap((row) => lines.map((line) => line.value(row) ?? 0)));
  const legend = lines.map((line, i) =>
    `<text x="${WIDTH - PAD - 160}" y="${
      top + 14 + 14 * i
    }" fill="${line.color}" font-size="12">${line.label}</text>`
  ).join("");
  return [
    `<rect x="${PAD}" y="${top}" width="${
      WIDTH - 2 * PAD
    }" height="${HEIGHT}" fill="none" stroke="#ccc"/>`,
    `<text x="${PAD}" y="${top - 6}" font-size="13">${title} (max ${
      Math.round(max * 10) / 10
    })</text>`,
    ...lines.map((line) => polyline(rows, line.value, max, top, line.color)),
    legend,
  ].join("\n");
}

/** The chart as an SVG document; time runs left to right over the whole run. */
export function renderAutoscaleChart(rows: readonly TimelineRow[], title: string): string {
  const height = PAD + 3 * (HEIGHT + PAD);
  const escaped = title.replace(/[<&>"]/g, (char) => `&#${char.charCodeAt(0)};`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif">`,
    `<text x="${PAD}" y="20" font-size="15">${escaped}</text>`,
    panel(rows, 0, "load, calls/s", [
      { value: (row) => row.rate, color: "#1f77b4", label: "calls started" },
      { value: (row) => row.failures, color: "#d62728", label: "failed" },
    ]),
    panel(rows, 1, "replicas", [
      { value: (row) => row.replicas, color: "#2ca02c", label: "asked of Swarm" },
      { value: (row) => row.serving, color: "#ff7f0e", label: "answering" },
    ]),
    panel(rows, 2, "latency, ms", [
      { value: (row) => row.p99, color: "#9467bd", label: "p99" },
      { value: (row) => row.p50, color: "#8c564b", label: "p50" },
    ]),
    `</svg>`,
    "",
  ].join("\n");
}
