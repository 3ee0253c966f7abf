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
