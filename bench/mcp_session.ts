/**
 * One MCP session (2025-11-25) on raw HTTP, for load generators: initialize, `tools/call` of `echo`
 * with every answer parsed and its message checked, DELETE. Raw `fetch` rather than the official
 * client: a load generator measures the platform, and the SDK's own CPU per call would weigh on a
 * machine of two cores; the conformance tests use the official clients.
 */

/** The protocol revision the sessions speak. */
export const PROTOCOL_VERSION = "2025-11-25";

/** An answer that was not 2xx: its status, for callers that count 429s and 503s apart. */
export class HttpStatusError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HttpStatusError";
  }
}

/** A JSON-RPC answer from a JSON body or from the `data:` lines of an event stream. */
export function parseAnswer(
  contentType: string,
  text: string,
  id: number,
): Record<string, unknown> {
  if (contentType.startsWith("text/event-stream")) {
    for (const line of text.split("\n")) {
      // mcp-proxy's event store sends a priming event with empty data first.
      if (!line.startsWith("data:") || line.slice(5).trim() === "") continue;
      const message = JSON.parse(line.slice(5)) as Record<string, unknown>;
      if (message.id === id) return message;
    }
    throw new Error(`No answer with id ${id} in the event stream: ${text.slice(0, 200)}`);
  }
  return JSON.parse(text) as Record<string, unknown>;
}

/** Options of {@linkcode Session}. */
export interface SessionOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** The HTTP client to send with, e.g. one bound to a local address. */
  client?: Deno.HttpClient;
}

/** One MCP session (2025-11-25) on raw HTTP: what every worker of a load generator holds. */
export class Session {
  #sessionId = "";
  #nextId = 1;
  readonly #url: string;
  readonly #worker: number;
  readonly #options: SessionOptions;

  constructor(url: string, worker: number, options: SessionOptions = {}) {
    this.#url = url;
    this.#worker = worker;
    this.#options = options;
  }

  #headers(): Record<string, string> {
    return {
      ...(this.#options.token ? { authorization: `Bearer ${this.#options.token}` } : {}),
      ...(this.#sessionId
        ? { "mcp-session-id": this.#sessionId, "mcp-protocol-version": PROTOCOL_VERSION }
        : {}),
    };
  }

  async #post(body: unknown): Promise<Response> {
    return await fetch(this.#url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...this.#headers(),
      },
      body: JSON.stringify(body),
      ...(this.#options.client ? { client: this.#options.client } : {}),
    });
  }

  async open(): Promise<void> {
    const id = this.#nextId++;
    const response = await this.#post({
      jsonrpc: "2.0",
      id,
      method: "initialize",
      params: {
        protocolVersion: PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: "bench-peers", version: "1.0.0" },
      },
    });
    const text = await response.text();
    const sid = response.headers.get("mcp-session-id");
    if (!response.ok || sid === null) {
      throw new Error(`initialize: HTTP ${response.status} ${text.slice(0, 200)}`);
    }
    this.#sessionId = sid;
    const answer = parseAnswer(response.headers.get("content-type") ?? "", text, id);
    if (answer.result === undefined) throw new Error(`initialize: ${text.slice(0, 200)}`);
    const initialized = await this.#post({ jsonrpc: "2.0", method: "notifications/initialized" });
    await initialized.body?.cancel();
    if (!initialized.ok) throw new Error(`notifications/initialized: HTTP ${initialized.status}`);
  }

  /** Calls echo and checks that the answer carries this very message. */
  async echo(): Promise<void> {
    const id = this.#nextId++;
    const message = `w${this.#worker}-${id}`;
    const response = await this.#post({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name: "echo", arguments: { message } },
    });
    const text = await response.text();
    if (!response.ok) {
      throw new HttpStatusError(
        response.status,
        `tools/call: HTTP ${response.status} ${text.slice(0, 200)}`,
      );
    }
    const answer = parseAnswer(response.headers.get("content-type") ?? "", text, id);
    const result = answer.result as
      | { isError?: boolean; content?: { type: string; text?: string }[] }
      | undefined;
    const body = result?.content?.[0]?.text;
    if (answer.id !== id || result?.isError || typeof body !== "string") {
      throw new Error(`tools/call: ${text.slice(0, 200)}`);
    }
    if ((JSON.parse(body) as { message?: unknown }).message !== message) {
      throw new Error(`tools/call answered another message: ${body.slice(0, 200)}`);
    }
  }

  async close(): Promise<void> {
    if (!this.#sessionId) return;
    const response = await fetch(this.#url, {
      method: "DELETE",
      headers: this.#headers(),
      ...(this.#options.client ? { client: this.#options.client } : {}),
    }).catch(() => undefined);
    await response?.body?.cancel();
  }
}
