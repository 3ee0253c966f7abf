/**
 * Requests a tool sent to a 2025 client (sampling, elicitation) that wait for the client's answer.
 * The answer comes back as a POST of a JSON-RPC response on the same session, to this replica (the
 * one holding the call's open stream); it is matched by session and request ID, so one session
 * cannot answer another's requests. Each request waits at most `timeoutMs`.
 */

/** What the client answered: a result object, or a JSON-RPC error. */
export type ClientAnswer =
  | { result: Record<string, unknown> }
  | { error: { code: number; message: string } };

interface Waiting {
  resolve(answer: ClientAnswer): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Whether `body` is one JSON-RPC response or a batch of only responses. */
export function isResponseBatch(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.length > 0 && messages.every((message) => {
    if (typeof message !== "object" || message === null) return false;
    const m = message as Record<string, unknown>;
    return m.method === undefined && m.id !== undefined && ("result" in m || "error" in m);
  });
}

/** Requests waiting for their answer, by session and ID. */
export class ClientRequests {
  readonly #waiting = new Map<string, Waiting>();
  readonly #timeoutMs: number;
  #next = 0;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Requests waiting now. */
  get size(): number {
    return this.#waiting.size;
  }

  /** A new request ID for `sid`, and the answer it will get. */
  open(sid: string): { id: string; answer: Promise<ClientAnswer> } {
    const id = `router-${++this.#next}`;
    const key = keyOf(sid, id);
    const answer = new Promise<ClientAnswer>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        resolve({
          error: {
            code: -32001,
            message: `The client did not answer within ${this.#timeoutMs} ms`,
          },
        });
      }, this.#timeoutMs);
      this.#waiting.set(key, { resolve, timer });
    });
    return { id, answer };
  }

  /** Stops waiting for `id` (it could not be sent). */
  cancel(sid: string, id: string): void {
    const key = keyOf(sid, id);
    const waiting = this.#waiting.get(key);
    if (waiting === undefined) return;
    clearTimeout(waiting.timer);
    this.#waiting.delete(key);
    waiting.resolve({ error: { code: -32603, message: "The request was not sent" } });
  }

  /**
   * Delivers the responses of `body` (see {@linkcode isResponseBatch}); true when every one of
   * them answered a waiting request of `sid`, false (and nothing delivered) otherwise.
   */
  deliver(sid: string, body: unknown): boolean {
    const messages = (Array.isArray(body) ? body : [body]) as Record<string, unknown>[];
    const keys = messages.map((message) => keyOf(sid, String(message.id)));
    if (!keys.every((key) => this.#waiting.has(key))) return false;
    messages.forEach((message, i) => {
      const waiting = this.#waiting.get(keys[i]);
      if (waiting === undefined) return;
      this.#waiting.delete(keys[i]);
      clearTimeout(waiting.timer);
      waiting.resolve(toAnswer(message));
    });
    return true;
  }

  /** Answers every waiting request with an error. */
  close(): void {
    for (const waiting of this.#waiting.values()) {
      clearTimeout(waiting.timer);
      waiting.resolve({ error: { code: -32603, message: "The router is shutting down" } });
    }
    this.#waiting.clear();
  }
}

function keyOf(sid: string, id: string): string {
  return `${sid}\n${id}`;
}

/** A client's response as an answer; a malformed one becomes an error naming the problem. */
function toAnswer(message: Record<string, unknown>): ClientAnswer {
  if ("error" in message) {
    const error = message.error as { code?: unknown; message?: unknown } | null;
    return {
      error: {
        code: typeof error?.code === "number" && Number.isInteger(error.code) ? error.code : -32603,
        message: typeof error?.message === "string"
          ? error.message.slice(0, 1024)
          : "The client answered with an error",
      },
    };
  }
  const result = message.result;
  if (typeof result !== "object" || result === null || Array.isArray(result)) {
    return { error: { code: -32603, message: "The client's result is not an object" } };
  }
  return { result: result as Record<string, unknown> };
}
