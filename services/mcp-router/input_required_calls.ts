/**
 * Tools that ask the client, for 2026-07-28 clients. That era has no server-to-client requests:
 * a call that needs the client's input answers `input_required` with the requests and an opaque
 * `requestState`; the client fulfils them and sends the call again with `inputResponses` and the
 * state (multi-round-trip requests, SEP-2322). The backend call, though, is one bidirectional
 * stream that must stay open between the rounds, so it is parked here, on this replica, under a
 * random state (128 bits: unguessable, so a forged state finds nothing), until the retry comes or
 * `timeoutMs` passes (then it is cancelled).
 *
 * The retry must reach this replica, as a 2025 client's answer must (see the README's limits).
 */
import { encodeBase64Url } from "./session_token.ts";
import type { ClientAnswer } from "./client_requests.ts";
import type { ClientRequester, ToolResult } from "./tool_gateway.ts";

/** What one round ends with: the result, or requests for the client and the state to echo. */
export type RoundOutcome =
  | { result: ToolResult }
  | {
    requests: Record<string, { method: string; params: Record<string, unknown> }>;
    state: string;
  };

/** A retry whose state this replica does not hold (expired, answered, forged, another replica). */
export class UnknownStateError extends Error {
  constructor() {
    super("Unknown or expired requestState: call the tool again without it");
    this.name = "UnknownStateError";
  }
}

interface Parked {
  readonly controller: AbortController;
  readonly result: Promise<ToolResult>;
  /** Requests sent to the client and not answered yet, by key. */
  readonly pending: Map<string, {
    request: { method: string; params: Record<string, unknown> };
    answer(value: ClientAnswer): void;
  }>;
  /** Requests issued since the last round ended. */
  fresh: number;
  wake: (() => void) | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  next: number;
}

/** Options of {@linkcode InputRequiredCalls}. */
export interface InputRequiredCallsOptions {
  /** How long a parked call waits for the client's retry; default 60 s. */
  timeoutMs?: number;
  /** Most parked calls on this replica; default 10,000. */
  maxCalls?: number;
}

/** Parked interactive calls of 2026-07-28 clients. */
export class InputRequiredCalls {
  readonly #calls = new Map<string, Parked>();
  readonly #timeoutMs: number;
  readonly #maxCalls: number;

  constructor(options: InputRequiredCallsOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#maxCalls = options.maxCalls ?? 10_000;
  }

  /** Calls parked now. */
  get size(): number {
    return this.#calls.size;
  }

  /** Starts a call; `run` gets the function its tool's requests go through, and a signal. */
  start(
    run: (ask: ClientRequester, signal: AbortSignal) => Promise<ToolResult>,
  ): Promise<RoundOutcome> {
    if (this.#calls.size >= this.#maxCalls) {
      return Promise.resolve({
        result: {
          content: [{ type: "text", text: "Too many calls waiting for client input; try again" }],
          isError: true,
        },
      });
    }
    const controller = new AbortController();
    const call: Parked = {
      controller,
      result: undefined as unknown as Promise<ToolResult>,
      pending: new Map(),
      fresh: 0,
      wake: undefined,
      timer: undefined,
      next: 0,
    };
    const ask: ClientRequester = (method, params) =>
      new Promise<ClientAnswer>((answer) => {
        if (controller.signal.aborted) {
          return answer({ error: { code: -32603, message: "The call was cancelled" } });
        }
        call.pending.set(`input-${++call.next}`, { request: { method, params }, answer });
        call.fresh++;
        call.wake?.();
      });
    (call as { result: Promise<ToolResult> }).result = run(ask, controller.signal);
    return this.#round(randomState(), call);
  }

  /** Continues the call parked under `state` with the client's `responses`. */
  resume(state: string, responses: Readonly<Record<string, unknown>>): Promise<RoundOutcome> {
    const call = this.#calls.get(state);
    if (call === undefined) return Promise.reject(new UnknownStateError());
    this.#calls.delete(state);
    clearTimeout(call.timer);
    for (const [key, value] of Object.entries(responses)) {
      const waiting = call.pending.get(key);
      if (waiting === undefined) continue;
      call.pending.delete(key);
      waiting.answer(
        typeof value === "object" && value !== null && !Array.isArray(value)
          ? { result: value as Record<string, unknown> }
          : { error: { code: -32602, message: `The input response "${key}" is not an object` } },
      );
    }
    call.fresh = 0;
    return this.#round(state, call);
  }

  /** Cancels every parked call. */
  close(): void {
    for (const call of this.#calls.values()) this.#cancel(call);
    this.#calls.clear();
  }

  /**
   * Waits until the call ends or asks the client; requests issued together (one turn of the event
   * loop) go out in one round. Requests the client left unanswered are asked again.
   */
  async #round(state: string, call: Parked): Promise<RoundOutcome> {
    const asked = new Promise<"asked">((resolve) => {
      call.wake = () => resolve("asked");
      if (call.fresh > 0 || call.pending.size > 0) resolve("asked");
    });
    const ended = await Promise.race([call.result.then(() => "ended" as const), asked]);
    call.wake = undefined;
    if (ended === "ended") return { result: await call.result };
    await new Promise((resolve) => setTimeout(resolve, 0));
    const requests = Object.fromEntries(
      [...call.pending].map(([key, { request }]) => [key, request]),
    );
    call.timer = setTimeout(() => {
      if (this.#calls.get(state) !== call) return;
      this.#calls.delete(state);
      this.#cancel(call);
    }, this.#timeoutMs);
    this.#calls.set(state, call);
    return { requests, state };
  }

  #cancel(call: Parked): void {
    clearTimeout(call.timer);
    call.controller.abort();
    for (const { answer } of call.pending.values()) {
      answer({ error: { code: -32001, message: "The client did not continue the call in time" } });
    }
    call.pending.clear();
  }
}

function randomState(): string {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(16)));
}
