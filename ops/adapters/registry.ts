/**
 * The image registry the platform runs itself for a local multi-node Swarm (`cluster up`): Debian's
 * `docker-registry` (the CNCF distribution registry 2.8) as a background process on this machine,
 * listening on the cluster's host address only, storing under `.platform/registry/`. Every node's
 * engine trusts it as a plain-HTTP registry (`--insecure-registry 10.213.0.1:5000`, set by
 * `./platform` and `cluster up`), and images are deployed pinned by digest, so a node runs exactly
 * the bytes that were pushed.
 *
 * A real multi-node Swarm brings its own registry: `deploy --registry HOST:PORT`.
 */
import { OpsError } from "../errors.ts";
import { runCommand } from "./command.ts";

/** Where the platform's own registry listens: the host address of the local cluster. */
export const CLUSTER_REGISTRY_HOST = "10.213.0.1";
export const CLUSTER_REGISTRY = `${CLUSTER_REGISTRY_HOST}:5000`;

/** Options of {@linkcode ensurePlatformRegistry}. */
export interface RegistryOptions {
  /** The project root: the registry's data and log live in `.platform/registry/`. */
  root: string;
  log(line: string): void;
  sleep(ms: number): Promise<void>;
}

/** Whether a registry answers its API at `host:port` (`GET /v2/` → 200, or 401 with auth). */
export async function registryAnswers(address: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const response = await fetch(`http://${address}/v2/`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel();
    return response.ok || response.status === 401;
  } catch {
    return false;
  }
}

/**
 * Makes sure the platform's registry runs: installs Debian's `docker-registry` when missing, starts
 * it in the background and waits until it answers. Returns its `host:port`.
 */
export async function ensurePlatformRegistry(options: RegistryOptions): Promise<string> {
  if (await registryAnswers(CLUSTER_REGISTRY)) return CLUSTER_REGISTRY;
  const local = Object.values(Deno.networkInterfaces())
    .some((entry) => entry.address === CLUSTER_REGISTRY_HOST);
  if (!local) {
    throw new OpsError(
      `This Swarm has more than one node and no registry was given: pass --registry HOST:PORT, a ` +
        `registry every node can pull from (the platform runs one itself only on a local cluster ` +
        `made by "./platform cluster up", at ${CLUSTER_REGISTRY})`,
      { code: "NO_REGISTRY", exitCode: 2 },
    );
  }
  if (!(await hasProgram("docker-registry"))) {
    options.log("installing Debian's docker-registry package (the image registry of the cluster)");
    const install = await runCommand("apt-get", ["install", "-y", "-qq", "docker-registry"], {
      check: false,
      env: { DEBIAN_FRONTEND: "noninteractive" },
    });
    if (install.code !== 0) {
      throw new OpsError(`Cannot install docker-registry: ${install.stderr.trim().slice(-300)}`, {
        code: "REGISTRY_INSTALL_FAILED",
      });
    }
  }
  const dir = `${options.root}/.platform/registry`;
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  const config = `${dir}/config.yml`;
  await Deno.writeTextFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dir}/data`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: ${CLUSTER_REGISTRY}`,
      "",
    ].join("\n"),
  );
  options.log(`starting the cluster's image registry at ${CLUSTER_REGISTRY} (log: ${dir}/log)`);
  // setsid: the registry outlives this command and no terminal signal reaches it.
  await runCommand("sh", [
    "-c",
    'setsid docker-registry serve "$1" >>"$2" 2>&1 </dev/null & echo $! >"$3"',
    "sh",
    config,
    `${dir}/log`,
    `${dir}/pid`,
  ]);
  for (let waited = 0; waited < 20_000; waited += 250) {
    if (await registryAnswers(CLUSTER_REGISTRY)) return CLUSTER_REGISTRY;
    await options.sleep(250);
  }
  throw new OpsError(
    `The registry at ${CLUSTER_REGISTRY} did not answer within 20 s (see ${dir}/log)`,
    {
      code: "REGISTRY_FAILED",
    },
  );
}

async function hasProgram(name: string): Promise<boolean> {
  const result = await runCommand("sh", ["-c", `command -v ${name}`], { check: false });
  return result.code === 0;
}
