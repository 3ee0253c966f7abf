/** `build`: makes the base, Consul and services images; unchanged ones are reused. */
import type { Command } from "commander";
import type { CommandContext, CommandRunner } from "../context.ts";
import { ensureImages } from "./_images.ts";

/** Options of `build`. */
export interface BuildFlags {
  dryRun?: boolean;
}

/** Runs `build`. */
export async function buildCommand(context: CommandContext, flags: BuildFlags): Promise<void> {
  const started = context.now();
  const images = await ensureImages(context, { dryRun: flags.dryRun });
  const seconds = (context.now() - started) / 1000;
  const lines = [
    `base              ${images.base}`,
    `consul            ${images.consul}`,
    `lb                ${images.lb}`,
    `prometheus        ${images.prometheus}`,
    `services          ${images.services}`,
    ...Object.entries(images.perService).map(([name, tag]) => `${name.padEnd(17)} ${tag}`),
    images.steps.length === 0
      ? `every image was up to date (${seconds.toFixed(1)}s)`
      : `${flags.dryRun ? "would run" : "ran"} ${images.steps.length} build step(s) in ${
        seconds.toFixed(1)
      }s`,
  ];
  context.result({ ...images, dryRun: flags.dryRun ?? false, seconds }, lines.join("\n"));
}

/** Registers `build`. */
export function registerBuild(program: Command, run: CommandRunner): void {
  program.command("build")
    .description("build the images (content-tagged; unchanged images are reused)")
    .option("--dry-run", "show what would be built")
    .action((flags: BuildFlags) => run((context) => buildCommand(context, flags)));
}
