/**
 * Load-balancing strategies: pure pickers that choose one endpoint per call from the endpoints
 * that may take it, given the calls each one has outstanding.
 */

/** The name of a strategy. */
export type StrategyName = "round-robin" | "least-outstanding" | "random" | "weighted";

/** Every strategy, the default first. */
export const STRATEGY_NAMES: readonly StrategyName[] = [
  "round-robin",
  "least-outstanding",
  "random",
  "weighted",
];

/** What a picker needs to know about an endpoint. */
export interface PickCandidate {
  /** Unique and stable, e.g. the Consul service ID. */
  readonly id: string;
  /** Relative weight, e.g. Consul `Weights.Passing`; 1 when unknown. */
  readonly weight: number;
}

/** Chooses one endpoint per call. */
export interface Picker {
  readonly name: StrategyName;
  /** Picks one of `candidates`, or `undefined` when there is none. */
  pick<T extends PickCandidate>(
    candidates: readonly T[],
    outstanding: ReadonlyMap<string, number>,
  ): T | undefined;
}

/** Options of {@linkcode createPicker}. */
export interface PickerOptions {
  /** Source of numbers in [0, 1); pass {@linkcode seededRandom} for reproducible picks. */
  random?: () => number;
}

/** Parses a strategy name, throwing a `RangeError` that lists the valid ones. */
export function parseStrategy(text: string): StrategyName {
  const name = text.trim().toLowerCase();
  if ((STRATEGY_NAMES as readonly string[]).includes(name)) return name as StrategyName;
  const valid = STRATEGY_NAMES.map((value) => `"${value}"`).join(", ");
  throw new RangeError(`Invalid strategy "${text}": expected one of ${valid}`);
}

/** Creates a picker for the named strategy. */
export function createPicker(name: StrategyName, options: PickerOptions = {}): Picker {
  const random = options.random ?? Math.random;
  switch (name) {
    case "round-robin":
      return roundRobin();
    case "least-outstanding":
      return leastOutstanding();
    case "random":
      return {
        name,
        pick: (candidates) =>
          candidates.length === 0 ? undefined : candidates[randomIndex(candidates.length, random)],
      };
    case "weighted":
      return { name, pick: (candidates) => pickWeighted(candidates, random) };
  }
}

/** A deterministic source of numbers in [0, 1) (mulberry32), for tests and reproducible runs. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Round-robin remembers the ID it picked last, not a position: the next pick is the smallest ID after
 * it (wrapping). An endpoint that joins, leaves or is skipped for one call therefore never makes the
 * others lose or repeat a turn, which a counter modulo the list length would.
 */
function roundRobin(): Picker {
  let last: string | undefined;
  return {
    name: "round-robin",
    pick(candidates) {
      const chosen = nextAfter(candidates, last);
      if (chosen) last = chosen.id;
      return chosen;
    },
  };
}

/** Fewest outstanding calls wins; ties rotate like round-robin so idle endpoints all get work. */
function leastOutstanding(): Picker {
  let last: string | undefined;
  return {
    name: "least-outstanding",
    pick(candidates, outstanding) {
      let fewest = Infinity;
      for (const candidate of candidates) {
        fewest = Math.min(fewest, outstanding.get(candidate.id) ?? 0);
      }
      const tied = candidates.filter((candidate) =>
        (outstanding.get(candidate.id) ?? 0) === fewest
      );
      const chosen = nextAfter(tied, last);
      if (chosen) last = chosen.id;
      return chosen;
    },
  };
}

function nextAfter<T extends PickCandidate>(
  candidates: readonly T[],
  last: string | undefined,
): T | undefined {
  let first: T | undefined;
  let next: T | undefined;
  for (const candidate of candidates) {
    if (first === undefined || candidate.id < first.id) first = candidate;
    if (
      last !== undefined && candidate.id > last && (next === undefined || candidate.id < next.id)
    ) {
      next = candidate;
    }
  }
  return next ?? first;
}

/** Weighted random: endpoints without a positive weight only get calls when none has one. */
function pickWeighted<T extends PickCandidate>(
  candidates: readonly T[],
  random: () => number,
): T | undefined {
  const weighted = candidates.filter((candidate) => weightOf(candidate) > 0);
  if (weighted.length === 0) {
    return candidates.length === 0 ? undefined : candidates[randomIndex(candidates.length, random)];
  }
  const total = weighted.reduce((sum, candidate) => sum + weightOf(candidate), 0);
  let point = random() * total;
  for (const candidate of weighted) {
    point -= weightOf(candidate);
    if (point < 0) return candidate;
  }
  return weighted[weighted.length - 1];
}

function weightOf(candidate: PickCandidate): number {
  return Number.isFinite(candidate.weight) ? candidate.weight : 0;
}

function randomIndex(length: number, random: () => number): number {
  return Math.min(length - 1, Math.floor(random() * length));
}
