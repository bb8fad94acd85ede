/**
 * Retry delay of a failed stream entry, by its delivery count (pure).
 *
 * Exponential, capped: a transient failure (Postgres restarting) is retried soon, a persistent one
 * stops hammering the dependency, and after MAX_DELIVERIES the entry is dead-lettered anyway. The
 * jitter is optional and deterministic given `rand`, so many consumers failing together do not
 * retry in lock-step, while tests can pass `() => 0.5` for exact values.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** 0..1: the delay is spread over ±jitter/2 of itself. Default 0 (exact). */
  jitter?: number;
  rand?: () => number;
}

/** Delay before delivery number `deliveries + 1`, given that `deliveries` attempts failed (≥ 1). */
export function backoffMs(deliveries: number, o: BackoffOptions): number {
  const n = Math.max(1, Math.floor(deliveries));
  // 2^(n-1) overflows to Infinity for large n; Math.min keeps it at the cap.
  const raw = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(n - 1, 52));
  const jitter = Math.min(1, Math.max(0, o.jitter ?? 0));
  if (jitter === 0) return Math.max(0, Math.round(raw));
  const r = (o.rand ?? Math.random)();
  return Math.max(0, Math.round(raw * (1 - jitter / 2 + jitter * r)));
}

/**
 * How long an entry must have been idle (since its last delivery) before this consumer takes it.
 * Our own failed entries wait only for their backoff; another consumer's entries might still be in
 * flight there, so they also wait for `claimIdleMs`, the visibility timeout after which that
 * consumer is presumed dead.
 */
export function reclaimAfterMs(deliveries: number, ownEntry: boolean, o: BackoffOptions & { claimIdleMs: number }): number {
  const b = backoffMs(deliveries, o);
  return ownEntry ? b : Math.max(b, o.claimIdleMs);
}
