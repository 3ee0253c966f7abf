/** Builds the images a deployment needs, reusing every image whose content tag exists. */
import {
  debootstrapRootfs,
  listFiles,
  moduleFiles,
  readAptSources,
  readSourceFiles,
  serviceEntrypoints,
  stageServicesContext,
} from "../adapters/build_context.ts";
import { OpsError } from "../errors.ts";
import {
  type BuildStep,
  type DesiredImages,
  filesHash,
  latestOf,
  planBuild,
} from "../plan/build.ts";
import { findDebianMirror } from "../plan/debian_mirror.ts";
import type { CommandContext } from "../context.ts";

/** The public base image, used when it is present or can be pulled. */
export const DEBIAN_IMAGE = "debian:bookworm-slim";
const PULL_TIMEOUT_MS = 15_000;
/** The program of the load balancer image (`ops/main.ts lb sync`). */
const LB_ENTRY = "ops/main.ts";
/** The autoscaler's program, in the services image. */
const AUTOSCALER_ENTRY = "services/autoscaler/main.ts";
/** The program of the Prometheus image (config, Consul discovery, Prometheus itself). */
const PROMETHEUS_ENTRY = "prometheus/main.ts";

/** What {@linkcode ensureImages} made. */
export interface ImageSet extends DesiredImages {
  base: string;
  /** The steps that ran (empty when everything was cached). */
  steps: BuildStep[];
}

/** Options of {@linkcode ensureImages}. */
export interface EnsureImagesOptions {
  /** Plan only. */
  dryRun?: boolean;
}

/** Makes sure the base, Consul, lb, Prometheus and services images exist; builds only what changed. */
export async function ensureImages(
  context: CommandContext,
  options: EnsureImagesOptions = {},
): Promise<ImageSet> {
  const { config, docker, progress } = context;
  const base = await ensureBase(context, options.dryRun ?? false);
  const baseId = (await docker.imageId(base)) ?? base;
  const root = config.root;
  const denoVersion = Deno.version.deno;

  // Only the catalog's programs go in: a service being written next door does not break builds.
  const present = await serviceEntrypoints(root);
  const entrypoints = context.services.flatMap((service) => service.entrypoint ?? []);
  // The probes, and the autoscaler until the catalog lists it (with its stack.yml block).
  const probeEntries = [
    "ops/probe/main.ts",
    "ops/probe/mcp_main.ts",
    ...(entrypoints.includes(AUTOSCALER_ENTRY) ? [] : [AUTOSCALER_ENTRY]),
  ];
  const healthCheck = "services/runtime/health_check.sh";
  // The entry point of every Deno image: scopes `--allow-net` to the container's own networks.
  const launcher = "services/runtime/deno_run.sh";
  const shared = [
    "deno.json",
    "deno.lock",
    ...await listFiles(root, "proto"),
    healthCheck,
    launcher,
  ];
  const [dockerfile, consulDockerfile, lbDockerfile, prometheusDockerfile] = await readSourceFiles(
    root,
    ["services/Dockerfile", "consul/Dockerfile", "haproxy/Dockerfile", "prometheus/Dockerfile"],
  );
  const extra = { deno: denoVersion, base: baseId };

  const perService: Record<string, string> = {};
  const appFiles = new Set<string>(shared);
  for (const service of context.services) {
    if (!service.entrypoint) continue;
    if (!present.includes(service.entrypoint)) {
      throw new OpsError(`Cannot build "${service.name}": "${service.entrypoint}" does not exist`, {
        code: "MISSING_PROGRAM",
      });
    }
    const closure = await moduleFiles(config.denoPath, root, service.entrypoint);
    closure.forEach((path) => appFiles.add(path));
    const files = await readSourceFiles(root, [...new Set([...shared, ...closure])]);
    files.push(dockerfile);
    perService[service.name] = `${config.imagePrefix}/${service.name}:${filesHash(files, extra)}`;
  }
  for (const entry of [...entrypoints, ...probeEntries]) {
    (await moduleFiles(config.denoPath, root, entry)).forEach((path) => appFiles.add(path));
  }
  const allFiles = await readSourceFiles(root, [...appFiles]);
  allFiles.push(dockerfile);
  const services = `${config.imagePrefix}/services:${filesHash(allFiles, extra)}`;

  const consulFiles = [consulDockerfile, ...await readSourceFiles(root, ["consul/entrypoint.sh"])];
  const consul = `${config.imagePrefix}/consul:${filesHash(consulFiles, extra)}`;

  // The load balancer image: the ops tool (for `lb sync`) with its templates, and the healthcheck.
  const lbEntries = [LB_ENTRY];
  const lbFiles = new Set<string>([
    "deno.json",
    "deno.lock",
    healthCheck,
    launcher,
    ...await listFiles(root, "templates"),
  ]);
  for (const entry of lbEntries) {
    (await moduleFiles(config.denoPath, root, entry)).forEach((path) => lbFiles.add(path));
  }
  const lbSources = await readSourceFiles(root, [...lbFiles]);
  lbSources.push(lbDockerfile);
  const lb = `${config.imagePrefix}/lb:${filesHash(lbSources, extra)}`;

  // Prometheus: its program with the config template, and the healthcheck.
  const prometheusFiles = new Set<string>([
    "deno.json",
    "deno.lock",
    healthCheck,
    launcher,
    "templates/prometheus.yml.hbs",
    ...await moduleFiles(config.denoPath, root, PROMETHEUS_ENTRY),
  ]);
  const prometheusSources = await readSourceFiles(root, [...prometheusFiles]);
  prometheusSources.push(prometheusDockerfile);
  const prometheus = `${config.imagePrefix}/prometheus:${filesHash(prometheusSources, extra)}`;

  const desired: DesiredImages = { consul, lb, prometheus, services, perService };
  const existing = new Set(await docker.imageTags(`${config.imagePrefix}/`));
  const steps = planBuild(desired, existing);
  if (options.dryRun) return { base, ...desired, steps };

  for (const step of steps) {
    const started = context.now();
    switch (step.kind) {
      case "build-consul": {
        progress.log(`building ${step.tag}`);
        await docker.build({
          context: `${root}/consul`,
          dockerfile: `${root}/consul/Dockerfile`,
          tag: step.tag,
          buildArgs: { BASE_IMAGE: base, DEBIAN_MIRROR: await debianMirror() },
          onLine: (line) => progress.update(`  ${line}`),
        });
        break;
      }
      case "build-lb":
        await buildStaged(context, step.tag, {
          name: "lb",
          dockerfile: "haproxy/Dockerfile",
          appFiles: lbFiles,
          entrypoints: lbEntries,
          base,
        });
        break;
      case "build-prometheus":
        await buildStaged(context, step.tag, {
          name: "prometheus",
          dockerfile: "prometheus/Dockerfile",
          appFiles: prometheusFiles,
          entrypoints: [PROMETHEUS_ENTRY],
          base,
        });
        break;
      case "build-services":
        await buildStaged(context, step.tag, {
          name: "services",
          dockerfile: "services/Dockerfile",
          appFiles,
          entrypoints: [...entrypoints, ...probeEntries],
          base,
        });
        break;
      case "tag":
        await docker.tag(step.source, step.target);
        break;
    }
    progress.done();
    if (step.kind !== "tag") {
      progress.log(`built ${step.tag} in ${((context.now() - started) / 1000).toFixed(1)}s`);
    }
  }
  for (const ref of [consul, lb, prometheus, services, ...Object.values(perService)]) {
    await docker.tag(ref, latestOf(ref));
  }
  return { base, ...desired, steps };
}

/**
 * Builds an image of Deno programs: stages `.build/<name>` (the code, the Deno binary and the npm
 * cache its entrypoints need), then runs `docker build` with `dockerfile` on it.
 */
async function buildStaged(
  context: CommandContext,
  tag: string,
  image: {
    name: string;
    dockerfile: string;
    appFiles: ReadonlySet<string>;
    entrypoints: readonly string[];
    base: string;
  },
): Promise<void> {
  const { config, docker, progress } = context;
  const root = config.root;
  progress.log(`building ${tag}`);
  const contextDir = `${config.buildDir}/${image.name}`;
  await stageServicesContext({
    root,
    context: contextDir,
    denoPath: config.denoPath,
    appFiles: [...image.appFiles].sort(),
    entrypoints: [...image.entrypoints],
    depsKey: filesHash(await readSourceFiles(root, ["deno.json", "deno.lock"]), {
      deno: Deno.version.deno,
      entrypoints: image.entrypoints.join(","),
    }),
    onLine: (line) => progress.update(`  ${line}`),
  });
  await docker.build({
    context: contextDir,
    dockerfile: `${root}/${image.dockerfile}`,
    tag,
    buildArgs: { BASE_IMAGE: image.base },
    onLine: (line) => progress.update(`  ${line}`),
  });
}

/** The base image: Debian's when present or pullable, else one made with debootstrap, once. */
async function ensureBase(context: CommandContext, dryRun: boolean): Promise<string> {
  const { docker, progress, config } = context;
  const local = `${config.imagePrefix}/base:bookworm`;
  if (await docker.imageId(DEBIAN_IMAGE)) return DEBIAN_IMAGE;
  if (await docker.imageId(local)) return local;
  if (dryRun) {
    progress.log(`would make ${local} (or pull ${DEBIAN_IMAGE})`);
    return local;
  }
  progress.log(`trying to pull ${DEBIAN_IMAGE}`);
  if (await docker.tryPull(DEBIAN_IMAGE, PULL_TIMEOUT_MS)) return DEBIAN_IMAGE;
  const mirror = await debianMirror();
  progress.log(`no registry answers: making ${local} with debootstrap from ${mirror}`);
  const started = context.now();
  const rootfs = `${config.buildDir}/base/rootfs`;
  await debootstrapRootfs(rootfs, mirror, (line) => progress.update(`  ${line}`));
  progress.done();
  await docker.importRootfs(rootfs, local);
  progress.log(`made ${local} in ${((context.now() - started) / 1000).toFixed(1)}s`);
  return local;
}

async function debianMirror(): Promise<string> {
  const { sources, sourcesList } = await readAptSources();
  const mirror = findDebianMirror(sources, sourcesList);
  if (!mirror) {
    throw new OpsError(
      "Cannot find a Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list",
      { code: "NO_MIRROR" },
    );
  }
  return mirror;
}
