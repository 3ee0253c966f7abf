/**
 * A command context with fake adapters, for unit tests of the ops commands. Each fake records its
 * calls; calling a method the test did not give it fails the test ("unexpected docker.swarmInit()"),
 * so a test of a dry run also proves that nothing else was touched. The clock is virtual: `sleep`
 * advances `now` at once.
 */
import type { Consul } from "../../ops/adapters/consul.ts";
import type { Docker } from "../../ops/adapters/docker.ts";
import type { GlobalFlags } from "../../ops/config.ts";
import { type Adapters, type CommandContext, createContext } from "../../ops/context.ts";
import type { PlatformService } from "../../ops/plan/services.ts";

/** One recorded call: `docker.scale`, with its arguments. */
export interface FakeCall {
  name: string;
  args: unknown[];
}

/** A fake context and what the command did through it. */
export interface FakeRun {
  context: CommandContext;
  calls: FakeCall[];
  stdout: string[];
  stderr: string[];
  /** The calls' names in order, e.g. `["docker.info", "docker.nodes"]`. */
  names(): string[];
}

// deno-lint-ignore no-explicit-any
type Methods = Record<string, (...args: any[]) => unknown>;

function fake<T>(kind: string, methods: Methods, calls: FakeCall[]): T {
  return new Proxy({}, {
    get(_target, property) {
      if (typeof property !== "string" || property === "then") return undefined;
      const method = methods[property];
      return (...args: unknown[]) => {
        calls.push({ name: `${kind}.${property}`, args });
        if (!method) throw new Error(`unexpected ${kind}.${property}()`);
        return method(...args);
      };
    },
  }) as T;
}

/** Options of {@linkcode fakeContext}. */
export interface FakeContextOptions {
  docker?: Methods;
  consul?: Methods;
  haproxy?: Methods;
  flags?: GlobalFlags;
  env?: Record<string, string>;
  /** The service catalog the commands see; default the platform's. */
  services?: readonly PlatformService[];
}

/** A context whose adapters are fakes made of `options`' methods. */
export function fakeContext(options: FakeContextOptions = {}): FakeRun {
  const calls: FakeCall[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  let now = 1_000_000;
  const adapters: Adapters = {
    docker: fake<Docker>("docker", options.docker ?? {}, calls),
    consul: fake<Consul>("consul", options.consul ?? {}, calls),
    haproxy: fake<Adapters["haproxy"]>("haproxy", options.haproxy ?? {}, calls),
  };
  const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
  const context = createContext(options.flags ?? {}, {
    env: { PLATFORM_STACK: "st", ...options.env },
    facts: { root, denoPath: Deno.execPath() },
    stdout: (text) => stdout.push(text),
    stderr: (text) => stderr.push(text),
    isTerminal: false,
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
  }, adapters);
  const run: FakeRun = {
    context: options.services ? { ...context, services: options.services } : context,
    calls,
    stdout,
    stderr,
    names: () => calls.map((call) => call.name),
  };
  return run;
}
