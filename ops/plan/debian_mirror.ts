/** Finds the machine's own Debian mirror in its apt sources. */

/**
 * The first non-security `URIs:` of deb822 `.sources` files, else the first non-security `deb` line
 * of a `sources.list`; undefined when there is none.
 */
export function findDebianMirror(sources: readonly string[], sourcesList = ""): string | undefined {
  for (const text of sources) {
    for (const line of text.split("\n")) {
      const match = /^URIs:\s*(.+)$/.exec(line.trim());
      if (!match) continue;
      const uri = match[1].split(/\s+/).find((entry) => !/security/.test(entry));
      if (uri) return uri;
    }
  }
  for (const line of sourcesList.split("\n")) {
    const trimmed = line.trim();
    if (!trimmed.startsWith("deb ") || /security/.test(trimmed)) continue;
    const uri = trimmed.split(/\s+/).find((entry) => /^https?:\/\//.test(entry));
    if (uri) return uri;
  }
  return undefined;
}
