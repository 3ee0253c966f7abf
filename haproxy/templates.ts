/** Reads the HAProxy templates: a main template and the partials in a folder beside it. */

import type { HaproxyTemplates } from "./config.ts";

/** Options of {@linkcode loadHaproxyTemplates}. */
export interface LoadHaproxyTemplatesOptions {
  /** Folder of `*.hbs` partials, each named after its file; defaults to `<dir of main>/haproxy`. */
  partialsDir?: string;
}

/** Reads `path` and its partials; throws with the path when one cannot be read. */
export async function loadHaproxyTemplates(
  path: string,
  options: LoadHaproxyTemplatesOptions = {},
): Promise<HaproxyTemplates> {
  const slash = path.lastIndexOf("/");
  const partialsDir = options.partialsDir ?? `${slash < 0 ? "." : path.slice(0, slash)}/haproxy`;
  let main: string;
  try {
    main = await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(`Cannot read the HAProxy template "${path}": ${reason(error)}`, {
      cause: error,
    });
  }
  const partials: Record<string, string> = {};
  try {
    for await (const entry of Deno.readDir(partialsDir)) {
      if (!entry.isFile || !entry.name.endsWith(".hbs")) continue;
      partials[entry.name.slice(0, -4)] = await Deno.readTextFile(`${partialsDir}/${entry.name}`);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new Error(`Cannot read the HAProxy partials in "${partialsDir}": ${reason(error)}`, {
        cause: error,
      });
    }
  }
  return { main, partials };
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
