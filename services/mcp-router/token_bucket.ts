/** A token bucket: `rate` tokens a second up to `burst`; pure, the caller passes the time. */

/** One client's bucket; full when created. */
export class TokenBucket {
  #tokens: number;
  #stamp: number;

  constructor(readonly rate: number, readonly burst: number, nowMs: number) {
    this.#tokens = burst;
    this.#stamp = nowMs;
  }

  /** Tokens in the bucket at `nowMs`. */
  tokens(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens;
  }

  /**
   * Takes `count` tokens at `nowMs` and returns 0, or takes none and returns the milliseconds
   * until `count` would be there (never more than a full refill).
   */
  take(count: number, nowMs: number): number {
    this.#refill(nowMs);
    if (this.#tokens >= count) {
      this.#tokens -= count;
      return 0;
    }
    const missing = Math.min(count, this.burst) - this.#tokens;
    return Math.max(1, Math.ceil((missing / this.rate) * 1000));
  }

  /** Gives back `count` tokens (a request refused for another reason costs nothing). */
  giveBack(count: number): void {
    this.#tokens = Math.min(this.burst, this.#tokens + count);
  }

  /** Whether the bucket is full at `nowMs`: forgetting it loses nothing. */
  full(nowMs: number): boolean {
    return this.tokens(nowMs) >= this.burst;
  }

  #refill(nowMs: number): void {
    // A clock that steps back adds nothing, rather than taking tokens away.
    const elapsed = Math.max(0, nowMs - this.#stamp);
    this.#stamp = Math.max(this.#stamp, nowMs);
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.rate) / 1000);
  }
}
