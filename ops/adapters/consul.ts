/**
 * Thin adapter over Consul's HTTP API for the ops tool, on the platform's one Consul client
 * (`services/runtime/consul/`), with the management token: `CONSUL_HTTP_TOKEN`, else
 * `CONSUL_HTTP_TOKEN_FILE`, else the stack's management token file (`managementTokenPath`:
 * `.platform/secrets/consul-management-token` for the default stack) when it exists.
 */
import { ConsulClient, ConsulError, consulPath } from "../../services/runtime/consul/client.ts";
import { describeRejected, parseServiceHealth } from "../../services/runtime/consul/health.ts";
import { deleteKv, getKv, putKv } from "../../services/runtime/consul/kv.ts";
import { loadConsulToken } from "../../services/runtime/consul/settings.ts";
import { OpsError } from "../errors.ts";
import { MANAGEMENT_TOKEN_PATH, managementTokenPath } from "../plan/consul_secrets.ts";
import type { ConsulInstance } from "../plan/state.ts";

const TIMEOUT_MS = 5_000;

export { MANAGEMENT_TOKEN_PATH };

/** Options of {@linkcode ConsulHttp}. */
export interface ConsulHttpOptions {
  /** The environment, for `CONSUL_HTTP_TOKEN` and `CONSUL_HTTP_TOKEN_FILE`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The project root, for the management token file. */
  root?: string;
  /** The stack whose management token file is read (default: the default stack's). */
  stack?: string;
  /** Called with each entry that failed validation. */
  onRejected?: (line: string) => void;
}

/** What commands use of Consul: {@linkcode ConsulHttp}'s methods (tests give a fake). */
export type Consul = Pick<ConsulHttp, keyof ConsulHttp>;

/** One Consul agent, reached over HTTP with the management token. */
export class ConsulHttp {
  /** Base URL, e.g. `http://127.0.0.1:8500`. */
  readonly url: string;
  readonly #options: ConsulHttpOptions;
  #client: Promise<ConsulClient> | undefined;

  constructor(url: string, options: ConsulHttpOptions = {}) {
    this.url = url.replace(/\/+$/, "");
    this.#options = options;
  }

  /** The shared client with the management token (read once). */
  client(): Promise<ConsulClient> {
    this.#client ??= this.#token().then((token) =>
      new ConsulClient(this.url, { token, timeoutMs: TIMEOUT_MS })
    );
    return this.#client;
  }

  async #token(): Promise<string | undefined> {
    const env = this.#options.env ?? {};
    const fromEnv = await loadConsulToken({
      address: this.url,
      token: env.CONSUL_HTTP_TOKEN?.trim() || undefined,
      tokenFile: env.CONSUL_HTTP_TOKEN_FILE?.trim() || undefined,
    });
    if (fromEnv !== undefined || this.#options.root === undefined) return fromEnv;
    const relative = this.#options.stack === undefined
      ? MANAGEMENT_TOKEN_PATH
      : managementTokenPath(this.#options.stack);
    const path = `${this.#options.root}/${relative}`;
    try {
      return (await Deno.readTextFile(path)).trim() || undefined;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw new OpsError(`Cannot read the Consul management token "${path}": ${describe(error)}`, {
        code: "CONSUL_TOKEN",
        cause: error,
      });
    }
  }

  async #call<T>(work: (client: ConsulClient) => Promise<T>): Promise<T> {
    const client = await this.client();
    try {
      return await work(client);
    } catch (error) {
      if (!(error instanceof ConsulError)) throw error;
      throw new OpsError(error.message, {
        code: error.code === "CONSUL_HTTP" ? "CONSUL_ERROR" : "CONSUL_UNREACHABLE",
        cause: error,
      });
    }
  }

  /** Whether Consul answers and has a leader. */
  async ready(): Promise<boolean> {
    try {
      const leader = await this.#call((client) => client.get("/v1/status/leader"));
      return typeof leader === "string" && leader !== "";
    } catch {
      return false;
    }
  }

  /** Every valid registration of the given Consul services, with its health. */
  async instances(services: readonly string[]): Promise<ConsulInstance[]> {
    const lists = await Promise.all(
      services.map((name) =>
        this.#call((client) => client.get(consulPath("/v1/health/service", name)))
          .then((body) => parseServiceHealth(body, name))
      ),
    );
    const instances: ConsulInstance[] = [];
    for (const health of lists) {
      for (const entry of health.rejected) this.#options.onRejected?.(describeRejected(entry));
      for (const instance of health.instances) {
        instances.push({
          id: instance.id,
          service: instance.service,
          address: instance.address,
          port: instance.port,
          status: instance.health,
          ...(instance.node === "" ? {} : { node: instance.node }),
          weight: instance.weights.passing,
        });
      }
    }
    return instances.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The value of a KV key as text; undefined when the key does not exist. */
  async kvGet(key: string): Promise<string | undefined> {
    return await this.#call((client) => getKv(client, key));
  }

  /** Writes a KV key. */
  async kvPut(key: string, value: string): Promise<void> {
    await this.#call((client) => putKv(client, key, { value }));
  }

  /** Deletes a KV key (a missing key is no error). */
  async kvDelete(key: string): Promise<void> {
    await this.#call((client) => deleteKv(client, key));
  }

  /**
   * Removes a registration. The agent this tool reaches holds the ones of its own node; one that
   * another node's agent holds (given `node`, and unknown to this agent) is removed from the catalog
   * under that node. Should that agent still run it, it registers it again and reaps it by its own
   * check. Consul answers 200 to an agent deregistration of an ID it does not hold, hence the look.
   */
  async deregister(serviceId: string, options: { node?: string } = {}): Promise<void> {
    const node = options.node;
    try {
      const local = node === undefined ||
        await this.#call((client) =>
            client.getOrUndefined(consulPath("/v1/agent/service", serviceId))
          ) !== undefined;
      await this.#call((client) =>
        local
          ? client.put(consulPath("/v1/agent/service/deregister", serviceId))
          : client.put("/v1/catalog/deregister", { body: { Node: node, ServiceID: serviceId } })
      );
    } catch (error) {
      const status = ((error as OpsError).cause as ConsulError | undefined)?.status;
      if (status === 404) return;
      throw new OpsError(`Cannot deregister "${serviceId}" from Consul: ${describe(error)}`, {
        code: "CONSUL_ERROR",
        cause: error,
      });
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
