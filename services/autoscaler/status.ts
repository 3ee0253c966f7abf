/**
 * The autoscaler's status document: what it last decided per service and why. The autoscaler
 * serves it on `/status` and writes it to Consul KV (`platform/autoscaler/status`), where
 * `./platform autoscale status` reads it from the host on any manager.
 */

/** One service in the document. */
export interface StatusEntry {
  readonly service: string;
  readonly shortName: string;
  readonly policyText: string;
  readonly metric: string | null;
  readonly target: number | null;
  readonly replicas: number;
  readonly running: number;
  readonly state: string;
  readonly desired: number;
  readonly reason: string;
  readonly perInstance: number | null;
  readonly at: number;
}

/** The whole document. */
export interface StatusDocument {
  /** When the last evaluation ended, ms since the epoch. */
  readonly at: number;
  /** Why the last evaluation read nothing (Swarm unreadable), else null. */
  readonly error: string | null;
  /** Seconds between evaluations. */
  readonly intervalSeconds: number;
  readonly services: readonly StatusEntry[];
}

/** Checks a document read back from Consul (any writer could have put anything there). */
export function parseStatusDocument(body: unknown): StatusDocument {
  const fail = (what: string): never => {
    throw new TypeError(`The autoscaler's status document is malformed: ${what}`);
  };
  if (!body || typeof body !== "object") fail("not an object");
  const document = body as Record<string, unknown>;
  const number = (value: unknown, what: string) =>
    typeof value === "number" && Number.isFinite(value) ? value : fail(`${what} is not a number`);
  const text = (value: unknown, what: string) =>
    typeof value === "string" ? value : fail(`${what} is not a string`);
  const nullable = <T>(value: unknown, read: (v: unknown, w: string) => T, what: string) =>
    value === null || value === undefined ? null : read(value, what);
  if (!Array.isArray(document.services)) fail("services is not a list");
  return {
    at: number(document.at, "at"),
    error: nullable(document.error, text, "error"),
    intervalSeconds: number(document.intervalSeconds, "intervalSeconds"),
    services: (document.services as unknown[]).map((raw, i) => {
      if (!raw || typeof raw !== "object") fail(`services[${i}] is not an object`);
      const entry = raw as Record<string, unknown>;
      return {
        service: text(entry.service, `services[${i}].service`),
        shortName: text(entry.shortName, `services[${i}].shortName`),
        policyText: text(entry.policyText, `services[${i}].policyText`),
        metric: nullable(entry.metric, text, `services[${i}].metric`),
        target: nullable(entry.target, number, `services[${i}].target`),
        replicas: number(entry.replicas, `services[${i}].replicas`),
        running: number(entry.running, `services[${i}].running`),
        state: text(entry.state, `services[${i}].state`),
        desired: number(entry.desired, `services[${i}].desired`),
        reason: text(entry.reason, `services[${i}].reason`),
        perInstance: nullable(entry.perInstance, number, `services[${i}].perInstance`),
        at: number(entry.at, `services[${i}].at`),
      };
    }),
  };
}
