/**
 * A 2025 session's GET stream: server-to-client notifications (list changes, resource updates) as
 * SSE events, and a comment line on a quiet stream so idle proxies keep it. Built by hand rather
 * than with an SDK `Server` and transport per stream: a listening stream only ever sends
 * notifications, and a server per stream is memory and work for nothing. Events are framed as the SDK frames them (`event: message`, one `data:` line).
 */

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": keepalive\n\n");

/** Options of {@linkcode NotificationStream}. */
export interface NotificationStreamOptions {
  /** A comment line this often; 0: none. */
  heartbeatMs: number;
  /** Called once when the stream ends, whoever ends it. */
  onClose(): void;
}

/** One listening stream. */
export class NotificationStream {
  /** The response body. */
  readonly body: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #open = true;
  readonly #heartbeat: ReturnType<typeof setInterval> | undefined;
  readonly #onClose: () => void;

  constructor(options: NotificationStreamOptions) {
    this.#onClose = options.onClose;
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => this.#end(),
    });
    this.#heartbeat = options.heartbeatMs > 0
      ? setInterval(() => this.#write(HEARTBEAT), options.heartbeatMs)
      : undefined;
  }

  /** Sends a JSON-RPC notification; false once the stream has ended. */
  send(method: string, params?: Record<string, unknown>): boolean {
    const message = params === undefined
      ? { jsonrpc: "2.0", method }
      : { jsonrpc: "2.0", method, params };
    return this.#write(encoder.encode(`event: message\ndata: ${JSON.stringify(message)}\n\n`));
  }

  /** Ends the stream for the client. */
  close(): void {
    if (!this.#open) return;
    try {
      this.#controller.close();
    } catch {
      // Already errored by the client going away.
    }
    this.#end();
  }

  #write(bytes: Uint8Array): boolean {
    if (!this.#open) return false;
    try {
      this.#controller.enqueue(bytes);
      return true;
    } catch {
      this.#end();
      return false;
    }
  }

  #end(): void {
    if (!this.#open) return;
    this.#open = false;
    clearInterval(this.#heartbeat);
    this.#onClose();
  }
}
