/** Content tags of the images and the build steps that make the missing ones. */
import { createHash } from "node:crypto";

/** A file that goes into an image, by path relative to the repository, with its content. */
export interface SourceFile {
  path: string;
  content: Uint8Array | string;
}

/** The first 12 hex digits of a SHA-256 over labelled parts, in the order given. */
export function contentHash(
  parts: readonly { label: string; content: Uint8Array | string }[],
): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(`${part.label}\0`);
    hash.update(part.content);
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 12);
}

/** Hash of a set of files, independent of the order they were listed in. */
export function filesHash(
  files: readonly SourceFile[],
  extra: Readonly<Record<string, string>> = {},
): string {
  const parts = [...files].sort((a, b) => a.path.localeCompare(b.path))
    .map((file) => ({ label: `file:${file.path}`, content: file.content }));
  for (const key of Object.keys(extra).sort()) {
    parts.push({ label: `extra:${key}`, content: extra[key] });
  }
  return contentHash(parts);
}

/** The images a deployment needs, by content tag. */
export interface DesiredImages {
  consul: string;
  /** HAProxy with the ops tool (`lb sync`). */
  lb: string;
  /** Debian's Prometheus run by `prometheus/main.ts`. */
  prometheus: string;
  /** The shared services image (all programs, the probe included). */
  services: string;
  /** Per service name: its own tag, which changes only when its own code does. */
  perService: Record<string, string>;
}

/** One build step. */
export type BuildStep =
  | { kind: "build-consul"; tag: string }
  | { kind: "build-lb"; tag: string }
  | { kind: "build-prometheus"; tag: string }
  | { kind: "build-services"; tag: string }
  | { kind: "tag"; source: string; target: string };

/**
 * The steps that make every desired image that is not there yet. A service whose own tag exists is
 * left alone, so the stack keeps its spec and Swarm does not restart it.
 */
export function planBuild(desired: DesiredImages, existing: ReadonlySet<string>): BuildStep[] {
  const steps: BuildStep[] = [];
  if (!existing.has(desired.consul)) steps.push({ kind: "build-consul", tag: desired.consul });
  if (!existing.has(desired.lb)) steps.push({ kind: "build-lb", tag: desired.lb });
  if (!existing.has(desired.prometheus)) {
    steps.push({ kind: "build-prometheus", tag: desired.prometheus });
  }
  const missing = Object.values(desired.perService).filter((tag) => !existing.has(tag)).sort();
  if (!existing.has(desired.services)) {
    steps.push({ kind: "build-services", tag: desired.services });
  }
  for (const tag of missing) steps.push({ kind: "tag", source: desired.services, target: tag });
  return steps;
}

/** `repo:tag` → `repo:latest`, the tag a plain `docker stack deploy -c stack.yml` uses. */
export function latestOf(ref: string): string {
  const colon = ref.lastIndexOf(":");
  return `${colon > ref.lastIndexOf("/") ? ref.slice(0, colon) : ref}:latest`;
}
