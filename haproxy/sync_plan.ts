/** Decides how HAProxy follows a model change: runtime API commands when only servers moved, else a reload. */

import type { LbBackend, LbModel, LbSlot } from "./model.ts";

/** What to do to bring HAProxy from one model to the next. */
export type LbPlan =
  | { readonly kind: "none" }
  | {
    readonly kind: "runtime";
    /** Runtime API commands, removals first. */
    readonly commands: readonly string[];
    /** True when something stops taking traffic: apply at once, do not debounce. */
    readonly urgent: boolean;
  }
  | { readonly kind: "reload"; readonly reasons: readonly string[] };

/** The part of a model a runtime command cannot change, as comparable text, with reasons. */
function structure(model: LbModel): Map<string, string> {
  const parts = new Map<string, string>();
  parts.set("settings", JSON.stringify(model.settings));
  for (const backend of [model.mcp, ...model.exposed]) {
    parts.set(
      `backend "${backend.name}"`,
      JSON.stringify({
        service: backend.service,
        mode: backend.mode,
        port: backend.port,
        slots: backend.slots.map((slot) => slot.name),
      }),
    );
  }
  return parts;
}

/** Why `next` cannot be reached with runtime commands from `current`; empty when it can. */
export function structuralChanges(current: LbModel, next: LbModel): string[] {
  const before = structure(current);
  const after = structure(next);
  const reasons: string[] = [];
  for (const [key, value] of after) {
    if (!before.has(key)) reasons.push(`${key} added`);
    else if (before.get(key) !== value) reasons.push(`${key} changed`);
  }
  for (const key of before.keys()) if (!after.has(key)) reasons.push(`${key} removed`);
  return reasons;
}

function sameEndpoint(a: LbSlot, b: LbSlot): boolean {
  return a.instance !== null && b.instance !== null && a.instance.id === b.instance.id &&
    a.instance.address === b.instance.address && a.instance.port === b.instance.port;
}

/** Commands that move one slot from `before` to `after`, split into removals and the rest. */
export function planSlot(
  backend: string,
  before: LbSlot,
  after: LbSlot,
): { removals: string[]; others: string[] } {
  const server = `${backend}/${after.name}`;
  const removals: string[] = [];
  const others: string[] = [];
  const ready = [`set server ${server} state ready`, `set server ${server} health up`];
  if (sameEndpoint(before, after)) {
    const instance = after.instance!;
    if (before.instance!.weight !== instance.weight) {
      others.push(`set server ${server} weight ${instance.weight}`);
    }
    if (before.state !== after.state) {
      if (after.state === "ready") others.push(...ready);
      else if (after.state === "drain") removals.push(`set server ${server} state drain`);
      else removals.push(`set server ${server} state maint`);
    }
    return { removals, others };
  }
  // Another instance, or none: the slot leaves traffic before it changes address. A slot in
  // `maint` or `empty` is already out (both render and run as HAProxy maintenance).
  if (before.state === "ready" || before.state === "drain") {
    removals.push(`set server ${server} state maint`);
  }
  if (after.instance === null) return { removals, others };
  const { address, port, weight } = after.instance;
  others.push(`set server ${server} addr ${address} port ${port}`);
  others.push(`set server ${server} weight ${weight}`);
  if (after.state === "ready") others.push(...ready);
  return { removals, others };
}

function planBackend(
  before: LbBackend,
  after: LbBackend,
): { removals: string[]; others: string[] } {
  const removals: string[] = [];
  const others: string[] = [];
  after.slots.forEach((slot, index) => {
    const step = planSlot(after.name, before.slots[index], slot);
    removals.push(...step.removals);
    others.push(...step.others);
  });
  return { removals, others };
}

/** Plans the move from the model HAProxy runs to the next one. */
export function planLbSync(current: LbModel, next: LbModel): LbPlan {
  const reasons = structuralChanges(current, next);
  if (reasons.length > 0) return { kind: "reload", reasons };
  const removals: string[] = [];
  const others: string[] = [];
  const pairs: [LbBackend, LbBackend][] = [[current.mcp, next.mcp]];
  for (const backend of next.exposed) {
    pairs.push([current.exposed.find((candidate) => candidate.name === backend.name)!, backend]);
  }
  for (const [before, after] of pairs) {
    const step = planBackend(before, after);
    removals.push(...step.removals);
    others.push(...step.others);
  }
  if (removals.length === 0 && others.length === 0) return { kind: "none" };
  return { kind: "runtime", commands: [...removals, ...others], urgent: removals.length > 0 };
}

/** IDs of the instances draining in `model`, by the HAProxy server (`backend/slot`) they occupy. */
export function drainingServers(model: LbModel): Map<string, string> {
  const draining = new Map<string, string>();
  for (const backend of [model.mcp, ...model.exposed]) {
    for (const slot of backend.slots) {
      if (slot.state === "drain" && slot.instance) {
        draining.set(`${backend.name}/${slot.name}`, slot.instance.id);
      }
    }
  }
  return draining;
}
