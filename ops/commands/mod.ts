/** Every command of the ops tool. Adding a command is one line here. */
import type { Command } from "commander";
import type { CommandRunner } from "../context.ts";
import { registerAutoscale } from "./autoscale.ts";
import { registerBuild } from "./build.ts";
import { registerCluster } from "./cluster.ts";
import { registerDeploy } from "./deploy.ts";
import { registerDestroy } from "./destroy.ts";
import { registerLb } from "./lb.ts";
import { registerLogs } from "./logs.ts";
import { registerNode } from "./node.ts";
import { registerProbe } from "./probe.ts";
import { registerPrune } from "./prune.ts";
import { registerRollback } from "./rollback.ts";
import { registerScale } from "./scale.ts";
import { registerStatus } from "./status.ts";
import { registerUpdate } from "./update.ts";
import { registerWeight } from "./weight.ts";

/** Adds one command (or a group) to the program. */
export type CommandRegistrar = (program: Command, run: CommandRunner) => void;

/** The commands, in the order `--help` lists them. */
export const COMMANDS: readonly CommandRegistrar[] = [
  registerDeploy,
  registerScale,
  registerStatus,
  registerLogs,
  registerProbe,
  registerUpdate,
  registerRollback,
  registerWeight,
  registerPrune,
  registerDestroy,
  registerNode,
  registerBuild,
  registerAutoscale,
  registerCluster,
  registerLb,
];
