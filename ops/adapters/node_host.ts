/**
 * Thin adapter over what the cluster's node engines leave on the host: processes (/proc), mounts,
 * cgroups and files, and the start of a detached engine.
 */
import { parseCgroupPaths, type ProcessEntry } from "../plan/cluster.ts";
import { runCommand } from "./command.ts";

const CGROUP_ROOT = "/sys/fs/cgroup";

/** Every process with its arguments and cgroups; processes that end while being read are left out. */
export async function listProcesses(): Promise<ProcessEntry[]> {
  const entries: ProcessEntry[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      const cgroup = await Deno.readTextFile(`/proc/${entry.name}/cgroup`);
      const args = cmdline.split("\0");
      if (args.at(-1) === "") args.pop();
      entries.push({ pid: Number(entry.name), args, cgroups: parseCgroupPaths(cgroup) });
    } catch {
      // ended meanwhile
    }
  }
  return entries;
}

/** Whether a process with `pid` exists. */
export async function processExists(pid: number): Promise<boolean> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/stat`);
    // A zombie (state Z) has ended; only its parent's wait is missing.
    return !/^\d+ \(.*\) Z /.test(status);
  } catch {
    return false;
  }
}

/** Sends `signal` to `pid`; false when it no longer exists. */
export function sendSignal(pid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** The mount table of this process's mount namespace. */
export function readMountinfo(): Promise<string> {
  return Deno.readTextFile("/proc/self/mountinfo");
}

/** Unmounts `path`, lazily when it is busy; false when it was not mounted or could not be. */
export async function unmount(path: string): Promise<boolean> {
  const result = await runCommand("umount", [path], { check: false });
  if (result.code === 0) return true;
  const lazy = await runCommand("umount", ["-l", path], { check: false });
  return lazy.code === 0;
}

/** Removes the cgroup directories `parent` (e.g. `/platform-cluster/platform-2`) left in each hierarchy. */
export async function removeCgroups(parent: string): Promise<void> {
  let hierarchies: string[] = [];
  try {
    for await (const entry of Deno.readDir(CGROUP_ROOT)) {
      if (entry.isDirectory) hierarchies.push(`${CGROUP_ROOT}/${entry.name}`);
    }
  } catch {
    hierarchies = [];
  }
  // cgroup v2 mounted at the root has no sub-hierarchies: the parent sits right under it.
  hierarchies.push(CGROUP_ROOT);
  for (const hierarchy of hierarchies) {
    await removeCgroupTree(`${hierarchy}${parent}`);
    // The shared parent goes too once no node uses it.
    try {
      await Deno.remove(`${hierarchy}${parent.replace(/\/[^/]+$/, "")}`);
    } catch {
      // still used by another node, or absent
    }
  }
}

async function removeCgroupTree(path: string): Promise<void> {
  const children: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) {
      if (entry.isDirectory) children.push(`${path}/${entry.name}`);
    }
  } catch {
    return;
  }
  for (const child of children) await removeCgroupTree(child);
  try {
    // A cgroup directory is removed with rmdir, never recursively: its files are the kernel's.
    await Deno.remove(path);
  } catch {
    // a process is still in it
  }
}

/** Whether a file or directory exists. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Removes a file or a directory tree; nothing when absent. */
export async function removePath(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Removes a directory when it is empty; nothing otherwise. */
export async function removeEmptyDir(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // not empty or absent
  }
}

/** Names in a directory; empty when it does not exist. */
export async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names;
}

/** Creates directories (with parents). */
export async function makeDirs(...paths: string[]): Promise<void> {
  for (const path of paths) await Deno.mkdir(path, { recursive: true });
}

/** Writes a text file. */
export async function writeText(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text);
}

/** The last `bytes` of a text file, or "" when it cannot be read. */
export async function readTail(path: string, bytes = 4096): Promise<string> {
  try {
    const file = await Deno.open(path, { read: true });
    try {
      const size = (await file.stat()).size;
      await file.seek(Math.max(0, size - bytes), Deno.SeekMode.Start);
      const buffer = new Uint8Array(Math.min(bytes, size));
      let read = 0;
      while (read < buffer.length) {
        const count = await file.read(buffer.subarray(read));
        if (count === null) break;
        read += count;
      }
      return new TextDecoder().decode(buffer.subarray(0, read));
    } finally {
      file.close();
    }
  } catch {
    return "";
  }
}

/**
 * Starts `argv` detached: no stdio, not waited for, and (through `setsid` in `argv`) in a session of
 * its own, so it outlives this process and a Ctrl-C of the caller's terminal.
 */
export function spawnDetached(argv: readonly string[]): void {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  // setsid exits at once when it had to fork; its status is of no interest.
  child.status.catch(() => {});
}

/**
 * Takes an exclusive lock on `path` (created when missing), waiting while another process holds it;
 * the lock goes with the returned handle's `release()` or with the process.
 */
export async function lockFile(path: string): Promise<{ release(): void }> {
  await Deno.mkdir(path.replace(/\/[^/]+$/, ""), { recursive: true });
  const file = await Deno.open(path, { read: true, write: true, create: true });
  await file.lock(true);
  return {
    release() {
      file.close();
    },
  };
}

/** This machine's hostname. */
export function hostname(): string {
  return Deno.hostname();
}
