/** Reading and writing the ops tool's own files (stack template, rendered stacks). */

/** Reads a text file, saying which one when it cannot. */
export async function readTextFile(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(`Cannot read "${path}": ${(error as Error).message}`, { cause: error });
  }
}

/** Writes a text file, creating its folder. */
export async function writeTextFile(path: string, text: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text);
}

/** Reads a text file; undefined when it does not exist. */
export async function readOptionalTextFile(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`Cannot read "${path}": ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Writes a secret only its owner may read: the folder is made 0700, the file 0600 (also when it
 * existed with wider permissions), and the text is written after the mode is set.
 */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  const folder = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(folder, { recursive: true, mode: 0o700 });
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    await Deno.chmod(path, 0o600);
    await file.write(new TextEncoder().encode(text));
  } finally {
    file.close();
  }
}

/** Removes a file; nothing when it does not exist. */
export async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Removes a folder if it is empty; nothing when it holds files or does not exist. */
export async function removeEmptyFolder(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // Not empty, or already gone: kept as it is.
  }
}

/** Writes `text` to a new temporary file only its owner may read; returns its path. */
export async function writeTempSecretFile(prefix: string, text: string): Promise<string> {
  const path = await Deno.makeTempFile({ prefix });
  await writeSecretFile(path, text);
  return path;
}

/**
 * Hands a file over to `uid`:`gid` (the user of a container it is mounted into); false when this
 * process may not (it is not root), and the file stays its own.
 */
export async function giveFileTo(path: string, uid: number, gid: number): Promise<boolean> {
  try {
    await Deno.chown(path, uid, gid);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) return false;
    throw error;
  }
}

/** This process's user and group, as `docker run --user` takes them (`uid:gid`). */
export function processUser(): string {
  return `${Deno.uid()}:${Deno.gid()}`;
}

/** The user and group IDs that own `path`; `undefined` when it does not exist. */
export async function fileOwner(path: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const { uid, gid } = await Deno.stat(path);
    return uid === null || gid === null ? undefined : { uid, gid };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`Cannot read "${path}": ${(error as Error).message}`, { cause: error });
  }
}
