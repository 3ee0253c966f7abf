/**
 * `weight <service> <instance> <n|default>`: sets an instance's Consul weight through its KV key
 * (`services/runtime/instance_weight.ts`), then waits until the instance has registered it, which
 * is what the routers' `weighted` strategy and HAProxy read.
 */
import type { Command } from "commander";
import { instanceWeightKey } from "../../services/runtime/instance_weight.ts";
import { UsageError } from "../errors.ts";
import { resolveService } from "../plan/services.ts";
import { findInstance, parseWeightArg } from "../plan/weight.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { pollUntil } from "./_poll.ts";

/** Options of `weight`. */
export interface WeightFlags {
  dryRun?: boolean;
}

/** What `weight` did. */
export interface WeightReport {
  service: string;
  instance: string;
  key: string;
  /** The weight asked for; `default` removed the key. */
  weight: number | "default";
  /** The instance's weight in Consul before and after. */
  from: number | null;
  to: number | null;
  dryRun: boolean;
}

/** Consul's weight when none is set. */
const DEFAULT_WEIGHT = 1;

/** Runs `weight`. */
export async function weightCommand(
  context: CommandContext,
  name: string,
  instanceName: string,
  weightText: string,
  flags: WeightFlags,
): Promise<WeightReport> {
  const service = resolveService(name, context.services);
  if (service.health !== "consul") {
    throw new UsageError(`Service "${service.name}" does not register in Consul: it has no weight`);
  }
  const weight = parseWeightArg(weightText);
  const instance = findInstance(
    await context.consul.instances([service.consulName]),
    service.consulName,
    instanceName,
  );
  const key = instanceWeightKey(service.consulName, instance.id);
  const wanted = weight === "default" ? DEFAULT_WEIGHT : weight;
  const report: WeightReport = {
    service: service.consulName,
    instance: instance.id,
    key,
    weight,
    from: instance.weight ?? null,
    to: instance.weight ?? null,
    dryRun: flags.dryRun ?? false,
  };
  context.progress.log(
    `${flags.dryRun ? "would set" : "setting"} the weight of ${instance.id} to ${weight} ` +
      `(Consul key "${key}")`,
  );
  if (flags.dryRun) {
    context.result(report, `dry run: ${instance.id} keeps weight ${report.from ?? "?"}`);
    return report;
  }
  if (weight === "default") await context.consul.kvDelete(key);
  else await context.consul.kvPut(key, String(weight));
  // The instance follows its key and registers again; done when Consul shows the new weight.
  report.to = await pollUntil(context, {
    what: `${instance.id} to register weight ${wanted}`,
    timeoutMs: context.config.timeoutSeconds * 1000,
    intervalMs: 200,
    onWait: (detail) => context.progress.update(detail),
  }, async () => {
    const now = (await context.consul.instances([service.consulName]))
      .find((entry) => entry.id === instance.id);
    if (now === undefined) {
      return { done: false, detail: `${instance.id} is not registered in Consul` };
    }
    return now.weight === wanted
      ? { done: true, value: now.weight }
      : { done: false, detail: `${instance.id} still has weight ${now.weight}` };
  });
  context.progress.done();
  context.result(report, `${instance.id}: weight ${report.from ?? "?"} -> ${report.to}`);
  return report;
}

/** Registers `weight`. */
export function registerWeight(program: Command, run: CommandRunner): void {
  program.command("weight")
    .description(
      "set an instance's Consul weight (routers' weighted strategy and HAProxy follow it)",
    )
    .argument("<service>", "echo, weather, itinerary, router or a full name")
    .argument("<instance>", "the instance ID (or its task ID), as status shows it")
    .argument("<weight>", 'an integer from 1 to 256, or "default"')
    .option("--dry-run", "show what would be set and stop")
    .action((name: string, instance: string, weight: string, flags: WeightFlags) =>
      run(async (context) => void await weightCommand(context, name, instance, weight, flags))
    );
}
