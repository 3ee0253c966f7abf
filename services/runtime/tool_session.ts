/**
 * One InvokeSession call on the service side, whatever serves the gRPC stream: the first message
 * is the call, later ones answer the tool's requests to the client. The gRPC adapter feeds it the
 * caller's messages and writes what it emits; the call itself runs through `execute`.
 */
import type {
  ClientAnswerMessage,
  InvokeEvent,
  InvokeRequest,
  InvokeResponse,
  SessionMessage,
} from "../../proto/mod.ts";
import { ClientRequestError, type ClientRequestMethod, type ToolContext } from "./tool.ts";
import { ToolError } from "./tool_error.ts";

/** Runs the call; the same function unary and streamed calls go through. */
export type SessionExecutor = (
  request: InvokeRequest,
  signal: AbortSignal,
  emit: (event: InvokeEvent) => void,
  ask: ToolContext["ask"],
) => Promise<InvokeResponse>;

/** Where a session writes: the gRPC stream back to the caller. */
export interface SessionSink {
  write(event: InvokeEvent): void;
  /** Ends the call with OK after the result. */
  end(): void;
  /** Ends the call with the error's status. */
  fail(error: unknown): void;
}

/** A session call between its first message and its end. */
export class ToolSession {
  readonly #execute: SessionExecutor;
  readonly #sink: SessionSink;
  readonly #signal: AbortSignal;
  readonly #pending = new Map<number, (answer: ClientAnswerMessage) => void>();
  #nextId = 1;
  #started = false;

  /** `signal` aborts when the caller cancels or the deadline passes. */
  constructor(execute: SessionExecutor, sink: SessionSink, signal: AbortSignal) {
    this.#execute = execute;
    this.#sink = sink;
    this.#signal = signal;
    signal.addEventListener("abort", () => this.callerGone(), { once: true });
  }

  /**
   * Takes one message of the caller. The first call starts the tool and resolves when it ended
   * (the result or the error already sent); later calls are ignored, answers go to their request.
   */
  onMessage(message: SessionMessage): Promise<void> | undefined {
    if (message.call && !this.#started) {
      this.#started = true;
      return this.#run(message.call);
    }
    if (message.answer) {
      const resolve = this.#pending.get(message.answer.id);
      this.#pending.delete(message.answer.id);
      resolve?.(message.answer);
    }
    return undefined;
  }

  /** The caller half-closed or went away: requests still waiting can never be answered. */
  callerGone(): void {
    for (const resolve of this.#pending.values()) {
      resolve({ id: 0, resultJson: "", errorCode: -32603, errorMessage: "Caller went away" });
    }
    this.#pending.clear();
  }

  async #run(request: InvokeRequest): Promise<void> {
    const emit = (event: InvokeEvent) => {
      if (!this.#signal.aborted) this.#sink.write(event);
    };
    try {
      const response = await this.#execute(
        request,
        this.#signal,
        emit,
        (method, params) => this.#ask(method, params),
      );
      this.#sink.write({ result: response });
      this.#sink.end();
    } catch (error) {
      this.#sink.fail(error);
      throw error;
    }
  }

  #ask(
    method: ClientRequestMethod,
    params: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    if (this.#signal.aborted) {
      return Promise.reject(new ToolError("CANCELLED", "The call was cancelled by the caller"));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (answer) => {
        if (answer.errorMessage !== "" || answer.errorCode !== 0) {
          return reject(new ClientRequestError(answer.errorCode, answer.errorMessage));
        }
        try {
          const value = JSON.parse(answer.resultJson);
          if (typeof value !== "object" || value === null || Array.isArray(value)) {
            throw new TypeError("not a JSON object");
          }
          resolve(value);
        } catch (error) {
          reject(new ClientRequestError(-32603, `Invalid answer: ${(error as Error).message}`));
        }
      });
      this.#sink.write({ request: { id, method, paramsJson: JSON.stringify(params) } });
    });
  }
}
