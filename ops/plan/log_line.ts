/** Rewrites `docker service logs` lines so each starts with its instance (the Consul service ID). */

/**
 * `[<timestamp> ]agent-platform_echo-agent.2.<task id>@node    | <text>` becomes
 * `echo-agent-<task id> | [<timestamp> ]<text>`: the instance first, named by the ID it registers
 * in Consul. Lines in another shape pass through unchanged.
 */
export function formatLogLine(line: string, service: string): string {
  const match = /^(\d{4}-\d\d-\d\dT\S+ )?\S+?\.(\d+)\.([a-z0-9]{25})@\S+\s*\|\s?(.*)$/s.exec(line);
  if (!match) return line;
  const [, timestamp, , taskId, text] = match;
  return `${service}-${taskId} | ${timestamp ?? ""}${text}`;
}

/** Lines of one instance's log, each starting with a `--timestamps` timestamp. */
export interface InstanceLog {
  instance: string;
  lines: readonly string[];
}

/** Interleaves instance logs by timestamp, each line prefixed with its instance. */
export function mergeInstanceLogs(logs: readonly InstanceLog[]): string[] {
  const all = logs.flatMap((log) =>
    log.lines.filter((line) => line !== "").map((line, index) => ({
      key: line.slice(0, line.indexOf(" ")),
      index,
      text: `${log.instance} | ${line}`,
    }))
  );
  // RFC 3339 timestamps with the same precision sort as text; ties keep each log's order.
  all.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : a.index - b.index);
  return all.map((entry) => entry.text);
}
