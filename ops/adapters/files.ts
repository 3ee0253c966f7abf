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
