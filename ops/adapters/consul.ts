/** Thin adapter over Consul's HTTP API. */
import { OpsError } from "../errors.ts";
import { type ConsulInstance, parseConsulHealth } from "../plan/state.ts";

const TIMEOUT_MS = 5_000;

/** One Consul agent, reached over HTTP. */
export class ConsulHttp {
  /** Base URL, e.g. `http://127.0.0.1:8500`. */
  readonly url: string;

  constructor(url: string) {
    this.url = url.replace(/\/+$/, "");
  }

  async #get(path: string): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (error) {
      throw new OpsError(`Cannot reach Consul at "${this.url}": ${(error as Error).message}`, {
        code: "CONSUL_UNREACHABLE",
        cause: error,
      });
    }
    if (!response.ok) {
      const body = (await response.text()).trim();
      throw new OpsError(
        `Consul at "${this.url}" answered ${response.status} to "${path}": ${body}`,
        {
          code: "CONSUL_ERROR",
        },
      );
    }
    return await response.json();
  }

  /** Whether Consul answers and has a leader. */
  async ready(): Promise<boolean> {
    try {
      const leader = await this.#get("/v1/status/leader");
      return typeof leader === "string" && leader !== "";
    } catch {
      return false;
    }
  }

  /** Every registration of the given Consul services, with its aggregate health. */
  async instances(services: readonly string[]): Promise<ConsulInstance[]> {
    const lists = await Promise.all(
      services.map((name) => this.#get(`/v1/health/service/${encodeURIComponent(name)}`)),
    );
    return lists.flatMap((entries) => parseConsulHealth(entries as unknown[]));
  }

  /** The raw value of a KV key; undefined when the key does not exist. */
  async kvGet(key: string): Promise<string | undefined> {
    const path = `/v1/kv/${key.split("/").map(encodeURIComponent).join("/")}?raw`;
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (error) {
      throw new OpsError(`Cannot reach Consul at "${this.url}": ${(error as Error).message}`, {
        code: "CONSUL_UNREACHABLE",
        cause: error,
      });
    }
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    const text = await response.text();
    if (!response.ok) {
      throw new OpsError(
        `Consul at "${this.url}" answered ${response.status} to "${path}": ${text.trim()}`,
        { code: "CONSUL_ERROR" },
      );
    }
    return text;
  }

  /** Removes a registration from the agent that holds it (the stack's single server). */
  async deregister(serviceId: string): Promise<void> {
    const path = `/v1/agent/service/deregister/${encodeURIComponent(serviceId)}`;
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method: "PUT",
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new OpsError(`Cannot reach Consul at "${this.url}": ${(error as Error).message}`, {
        code: "CONSUL_UNREACHABLE",
        cause: error,
      });
    }
    const body = (await response.text()).trim();
    if (!response.ok && response.status !== 404) {
      throw new OpsError(
        `Cannot deregister "${serviceId}" from Consul: ${response.status} ${body}`,
        {
          code: "CONSUL_ERROR",
        },
      );
    }
  }
}
