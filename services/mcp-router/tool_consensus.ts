/**
 * Which version of each tool a service offers, decided by its instances' majority. Backends are
 * untrusted: any process that can register under a service name answers Describe, so no single
 * instance (the one that sorts first, say) may decide the catalog.
 *
 * Rules, per tool name of one service:
 * - Every passing instance is described; `N` is their number, answered or not (an instance that
 *   did not answer cannot push a version through by silence).
 * - A version (title, description, schemas, annotations) served by more than `N / 2` instances is
 *   the catalog's. Without such a majority the previous catalog entry stays; a tool that never had
 *   one is left out.
 * - Calls of a tool go only to the instances that describe the catalog's version of it: the others
 *   (another version, the tool missing, no answer) are named as dissenting.
 *
 * A rolling update that changes a tool therefore moves old -> new when the new version gains the
 * majority: while old instances outnumber new ones, calls go to the old ones only; at a tie the old
 * entry stays; once the new ones are more than half, the catalog flips and calls go to them only.
 * No call ever reaches an instance whose tool differs from what `tools/list` advertises.
 *
 * Pure.
 */
import type { DescribeResponse, ToolMessage } from "../../proto/mod.ts";
import type { ServiceTools } from "./catalog.ts";

/** One passing instance and its Describe answer (`undefined`: it did not answer). */
export interface InstanceDescription {
  readonly instance: string;
  readonly answer: DescribeResponse | undefined;
}

/** An instance that does not serve the catalog's version of a tool. */
export interface Dissent {
  readonly tool: string;
  readonly instance: string;
  /** `version`: another version; `missing`: no such tool; `silent`: no answer. */
  readonly reason: "version" | "missing" | "silent";
}

/** The outcome for one service. */
export interface Consensus {
  /** The tools the catalog takes; `undefined` when no tool has a majority or a previous entry. */
  readonly tools: ServiceTools | undefined;
  /** Per tool name, the instances that may be sent its calls. */
  readonly allowed: ReadonlyMap<string, ReadonlySet<string>>;
  /** Instances left out of a tool's calls, sorted by tool then instance. */
  readonly dissent: readonly Dissent[];
  /** Tools with no majority: kept from the previous entry, or left out. */
  readonly undecided: readonly { tool: string; kept: boolean }[];
}

/** The identity of a tool version: every field an MCP client sees. */
export function toolFingerprint(tool: ToolMessage): string {
  return JSON.stringify([
    tool.name,
    tool.title,
    tool.description,
    tool.inputSchemaJson,
    tool.outputSchemaJson,
    tool.annotationsJson,
    tool.mode ?? "UNARY",
  ]);
}

/** Options of {@linkcode decideTools}. */
export interface DecideToolsOptions {
  /** The service's catalog entry so far, kept for tools without a majority. */
  previous?: ServiceTools;
}

/** Decides the tools of `service` from its instances' answers. */
export function decideTools(
  service: string,
  descriptions: readonly InstanceDescription[],
  options: DecideToolsOptions = {},
): Consensus {
  const { previous } = options;
  const total = descriptions.length;
  // Per instance: tool name -> fingerprint (a name described twice keeps its first version).
  const served = new Map<string, Map<string, ToolMessage>>();
  const names = new Set<string>();
  const versions = new Map<string, number>();
  for (const { instance, answer } of descriptions) {
    if (answer === undefined) continue;
    versions.set(answer.version, (versions.get(answer.version) ?? 0) + 1);
    const tools = new Map<string, ToolMessage>();
    for (const tool of answer.tools) {
      if (!tools.has(tool.name)) tools.set(tool.name, tool);
      names.add(tool.name);
    }
    served.set(instance, tools);
  }
  const previousTools = new Map((previous?.tools ?? []).map((tool) => [tool.name, tool]));
  const chosen: ToolMessage[] = [];
  const allowed = new Map<string, ReadonlySet<string>>();
  const dissent: Dissent[] = [];
  const undecided: { tool: string; kept: boolean }[] = [];
  for (const name of [...names].sort()) {
    const counts = new Map<string, { tool: ToolMessage; count: number }>();
    for (const tools of served.values()) {
      const tool = tools.get(name);
      if (tool === undefined) continue;
      const key = toolFingerprint(tool);
      const entry = counts.get(key) ?? { tool, count: 0 };
      entry.count++;
      counts.set(key, entry);
    }
    let winner = [...counts.values()].find((entry) => entry.count * 2 > total)?.tool;
    if (winner === undefined) {
      winner = previousTools.get(name);
      undecided.push({ tool: name, kept: winner !== undefined });
      if (winner === undefined) continue;
    }
    chosen.push(winner);
    const key = toolFingerprint(winner);
    const ids = new Set<string>();
    for (const { instance, answer } of descriptions) {
      const tool = served.get(instance)?.get(name);
      if (tool !== undefined && toolFingerprint(tool) === key) {
        ids.add(instance);
        continue;
      }
      const reason = answer === undefined ? "silent" : tool === undefined ? "missing" : "version";
      dissent.push({ tool: name, instance, reason });
    }
    allowed.set(name, ids);
  }
  // A tool of the previous entry that no instance describes any more has left the service.
  if (chosen.length === 0) return { tools: undefined, allowed, dissent, undecided };
  const version = [...versions].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ??
    previous?.version ?? "";
  return { tools: { service, version, tools: chosen }, allowed, dissent, undecided };
}
