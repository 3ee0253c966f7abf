/** File-system side of image builds: apt sources, module graphs, staged build contexts, debootstrap. */
import { OpsError } from "../errors.ts";
import type { SourceFile } from "../plan/build.ts";
import { runCommand } from "./command.ts";

/** The machine's apt sources: every `*.sources` file and `sources.list`. */
export async function readAptSources(): Promise<{ sources: string[]; sourcesList: string }> {
  const sources: string[] = [];
  try {
    for await (const entry of Deno.readDir("/etc/apt/sources.list.d")) {
      if (entry.isFile && entry.name.endsWith(".sources")) {
        sources.push(await Deno.readTextFile(`/etc/apt/sources.list.d/${entry.name}`));
      }
    }
  } catch {
    // No such directory: only sources.list may exist.
  }
  const sourcesList = await Deno.readTextFile("/etc/apt/sources.list").catch(() => "");
  return { sources, sourcesList };
}

/** Local files an entrypoint imports (itself included), relative to `root`, from `deno info`. */
export async function moduleFiles(
  denoPath: string,
  root: string,
  entry: string,
): Promise<string[]> {
  const result = await runCommand(denoPath, ["info", "--json", entry], { cwd: root });
  const info = JSON.parse(result.stdout) as { modules: { specifier: string }[] };
  const prefix = new URL(`file://${root}/`).href;
  return info.modules.map((module) => module.specifier)
    .filter((specifier) => specifier.startsWith(prefix))
    .map((specifier) => decodeURIComponent(specifier.slice(prefix.length)));
}

/** Reads files relative to `root`. */
export async function readSourceFiles(
  root: string,
  paths: readonly string[],
): Promise<SourceFile[]> {
  return await Promise.all(
    paths.map(async (path) => ({ path, content: await Deno.readFile(`${root}/${path}`) })),
  );
}

/** Every file under `directory` (relative to `root`), skipping tests. */
export async function listFiles(root: string, directory: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(relative: string): Promise<void> {
    for await (const entry of Deno.readDir(`${root}/${relative}`)) {
      const path = `${relative}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && !entry.name.endsWith("_test.ts")) out.push(path);
    }
  }
  await walk(directory);
  return out.sort();
}

/** Entry points of every service present (`services/<name>/main.ts`), relative to `root`. */
export async function serviceEntrypoints(root: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(`${root}/services`)) {
    if (!entry.isDirectory) continue;
    try {
      await Deno.stat(`${root}/services/${entry.name}/main.ts`);
      out.push(`services/${entry.name}/main.ts`);
    } catch {
      // A folder without a program (the runtime) is not an entry point.
    }
  }
  return out.sort();
}

/** Options of {@linkcode stageServicesContext}. */
export interface StageOptions {
  root: string;
  /** The context directory, e.g. `.build/services`. */
  context: string;
  denoPath: string;
  /** Files (relative to root) copied under `app/`. */
  appFiles: readonly string[];
  /** Entry points whose npm dependencies must be in the copied cache. */
  entrypoints: readonly string[];
  /** Changes when dependencies change; the npm cache is refreshed only then. */
  depsKey: string;
  onLine?: (line: string) => void;
}

/**
 * Lays out the services build context: `deno` (the binary), `deno_dir/npm` (npm packages resolved
 * here, on the host, because downloads fail inside `docker build`), `app/` (the code).
 */
export async function stageServicesContext(options: StageOptions): Promise<void> {
  const { context, root } = options;
  await Deno.mkdir(context, { recursive: true });

  // The binary: a hard link when possible (same file system), else a copy.
  const target = `${context}/deno`;
  const [source, existing] = await Promise.all([
    Deno.stat(options.denoPath),
    Deno.stat(target).catch(() => undefined),
  ]);
  if (!existing || existing.ino !== source.ino || existing.size !== source.size) {
    await Deno.remove(target).catch(() => {});
    await Deno.link(options.denoPath, target).catch(() => Deno.copyFile(options.denoPath, target));
  }

  const stamp = `${context}/deno_dir.stamp`;
  const current = await Deno.readTextFile(stamp).catch(() => "");
  if (current !== options.depsKey) {
    options.onLine?.("resolving npm dependencies on the host for the services image");
    const denoDir = `${context}/deno_dir`;
    const seed = `${root}/.platform/deno_dir/npm`;
    if (!(await exists(`${denoDir}/npm`)) && await exists(seed)) {
      await Deno.mkdir(denoDir, { recursive: true });
      await runCommand("cp", ["-a", seed, `${denoDir}/npm`]);
    }
    await runCommand(options.denoPath, ["cache", ...options.entrypoints], {
      cwd: root,
      env: { DENO_DIR: denoDir, DENO_NO_UPDATE_CHECK: "1" },
    });
    await Deno.writeTextFile(stamp, options.depsKey);
  }

  const app = `${context}/app`;
  await Deno.remove(app, { recursive: true }).catch(() => {});
  for (const path of options.appFiles) {
    const destination = `${app}/${path}`;
    await Deno.mkdir(destination.slice(0, destination.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${root}/${path}`, destination);
  }
}

/** Makes a minimal Debian root file system with debootstrap, once: an existing one is reused. */
export async function debootstrapRootfs(
  directory: string,
  mirror: string,
  onLine?: (line: string) => void,
): Promise<void> {
  if (await exists(`${directory}/etc/debian_version`)) return;
  const partial = `${directory}.partial`;
  await Deno.remove(partial, { recursive: true }).catch(() => {});
  await Deno.mkdir(partial.slice(0, partial.lastIndexOf("/")), { recursive: true });
  try {
    await runCommand("debootstrap", ["--variant=minbase", "bookworm", partial, mirror], {
      onStdoutLine: onLine,
      onStderrLine: onLine,
    });
  } catch (error) {
    throw new OpsError(
      `Cannot make a Debian base with debootstrap from "${mirror}": ${(error as Error).message}` +
        ' (install it with "apt-get install debootstrap")',
      { code: "DEBOOTSTRAP_FAILED", cause: error },
    );
  }
  await Deno.remove(directory, { recursive: true }).catch(() => {});
  await Deno.rename(partial, directory);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
