/** A small Prometheus registry: counters, gauges and histograms with labels, rendered as text. */

/** Label values of one series. */
export type Labels = Readonly<Record<string, string>>;

interface Metric {
  render(lines: string[]): void;
}

/** Latency buckets in seconds, from 250 µs to 60 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

/** Holds metrics and renders them in the Prometheus text format. */
export class MetricsRegistry {
  readonly #metrics: Metric[] = [];

  /** A counter. */
  counter(name: string, help: string): Counter {
    const metric = new Counter(name, help);
    this.#metrics.push(metric);
    return metric;
  }

  /** A gauge. */
  gauge(name: string, help: string): Gauge {
    const metric = new Gauge(name, help);
    this.#metrics.push(metric);
    return metric;
  }

  /** A histogram. */
  histogram(name: string, help: string, buckets = LATENCY_BUCKETS): Histogram {
    const metric = new Histogram(name, help, buckets);
    this.#metrics.push(metric);
    return metric;
  }

  /** The exposition text. */
  render(): string {
    const lines: string[] = [];
    for (const metric of this.#metrics) metric.render(lines);
    return lines.join("\n") + "\n";
  }
}

/** A monotonically increasing count per label set. */
export class Counter implements Metric {
  readonly #values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  /** Adds `value` (default 1). */
  inc(labels: Labels = {}, value = 1): void {
    const key = labelText(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + value);
  }

  /** The current value, for tests. */
  get(labels: Labels = {}): number {
    return this.#values.get(labelText(labels)) ?? 0;
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const [key, value] of this.#values) lines.push(`${this.name}${key} ${value}`);
  }
}

/** A value that goes up and down per label set. */
export class Gauge implements Metric {
  readonly #values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  /** Adds `value` (may be negative). */
  add(labels: Labels, value: number): void {
    const key = labelText(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + value);
  }

  /** Sets the value. */
  set(labels: Labels, value: number): void {
    this.#values.set(labelText(labels), value);
  }

  /** Forgets every series, for gauges rebuilt at each scrape. */
  clear(): void {
    this.#values.clear();
  }

  /** The current value, for tests. */
  get(labels: Labels = {}): number {
    return this.#values.get(labelText(labels)) ?? 0;
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    for (const [key, value] of this.#values) lines.push(`${this.name}${key} ${value}`);
  }
}

interface Series {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into cumulative buckets per label set. */
export class Histogram implements Metric {
  readonly #series = new Map<string, Series>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  /** Records one observation. */
  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]) series.counts[i]++;
    }
    series.sum += value;
    series.count++;
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const series of this.#series.values()) {
      this.buckets.forEach((bound, i) => {
        const labels = labelText({ ...series.labels, le: String(bound) });
        lines.push(`${this.name}_bucket${labels} ${series.counts[i]}`);
      });
      lines.push(
        `${this.name}_bucket${labelText({ ...series.labels, le: "+Inf" })} ${series.count}`,
        `${this.name}_sum${labelText(series.labels)} ${series.sum}`,
        `${this.name}_count${labelText(series.labels)} ${series.count}`,
      );
    }
  }
}

/** Label values that need no escaping, the common case on the hot path. */
const PLAIN = /^[^\\"\n]*$/;

function labelText(labels: Labels): string {
  let text = "";
  for (const name in labels) {
    const value = labels[name];
    const escaped = PLAIN.test(value)
      ? value
      : value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
    text += `${text === "" ? "{" : ","}${name}="${escaped}"`;
  }
  return text === "" ? "" : `${text}}`;
}
