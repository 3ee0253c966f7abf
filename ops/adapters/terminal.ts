/** Progress on stderr: one live line on a terminal, plain lines otherwise. */

/** Where commands report progress. */
export interface Progress {
  /** Replaces the live line (on a terminal) or prints it when it changed (otherwise). */
  update(text: string): void;
  /** Prints a line that stays. */
  log(text: string): void;
  /** Ends the live line. */
  done(): void;
}

/** Options of {@linkcode createProgress}. */
export interface ProgressOptions {
  isTerminal: boolean;
  write(text: string): void;
}

/** Creates a progress reporter for a terminal or a log. */
export function createProgress(options: ProgressOptions): Progress {
  let live = "";
  let last = "";
  function clear(): void {
    if (options.isTerminal && live !== "") options.write("\r\x1b[K");
    live = "";
  }
  return {
    update(text) {
      if (text === last) return;
      last = text;
      if (options.isTerminal) {
        clear();
        live = text;
        options.write(text.length > 200 ? `${text.slice(0, 197)}...` : text);
      } else {
        options.write(`${text}\n`);
      }
    },
    log(text) {
      clear();
      last = "";
      options.write(`${text}\n`);
    },
    done() {
      if (options.isTerminal && live !== "") options.write("\n");
      live = "";
      last = "";
    },
  };
}

/** Writes text to stderr, synchronously so progress and errors interleave in order. */
export function writeStderr(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(text));
}

/** Writes text to stdout. */
export function writeStdout(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}
