/**
 * Whether the Swarm end-to-end tests run: only when asked with `PLATFORM_E2E=1` (set by
 * `./platform test`, `tests/run.ts` and CI). They need the Docker engine and deploy stacks on it, so
 * a plain `deno test -P` shows them as ignored instead of running or passing them.
 */
export const E2E: boolean = Deno.env.get("PLATFORM_E2E") === "1";
