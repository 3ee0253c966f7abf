/**
 * `logging/setLevel` per 2025 session on this replica, and the rule that filters what backends log.
 * Bounded: the oldest entries go first past `max` (a session that set a level long ago then gets
 * every message again, which is what MCP says a server may do before any setLevel).
 */
import { MCP_LOG_LEVELS, type McpLogLevel } from "../runtime/tool.ts";

const SEVERITY = new Map<string, number>(MCP_LOG_LEVELS.map((level, i) => [level, i]));

/** Whether `level` is an MCP log level. */
export function isLogLevel(level: unknown): level is McpLogLevel {
  return typeof level === "string" && SEVERITY.has(level);
}

/** Whether a message at `level` passes `threshold` (every message passes no threshold). */
export function passes(level: McpLogLevel, threshold: McpLogLevel | undefined): boolean {
  return threshold === undefined || SEVERITY.get(level)! >= SEVERITY.get(threshold)!;
}

/** The level each session asked for. */
export class SessionLogLevels {
  readonly #levels = new Map<string, McpLogLevel>();
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /** Entries held. */
  get size(): number {
    return this.#levels.size;
  }

  /** The level `sid` set, if any. */
  get(sid: string): McpLogLevel | undefined {
    return this.#levels.get(sid);
  }

  /** Records the level of `sid`. */
  set(sid: string, level: McpLogLevel): void {
    this.#levels.delete(sid);
    this.#levels.set(sid, level);
    if (this.#levels.size > this.#max) {
      this.#levels.delete(this.#levels.keys().next().value!);
    }
  }

  /** Forgets `sid` (its session ended). */
  delete(sid: string): void {
    this.#levels.delete(sid);
  }
}
