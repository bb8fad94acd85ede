/**
 * A token bucket per connection for incoming packets (flood control): `capacity` packets at once,
 * refilled at `perSecond`. `now` comes in so the arithmetic is testable without clocks.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  take(now: number, n = 1): boolean {
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.capacity, this.tokens + elapsed * this.perSecond);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}
