/**
 * A latency histogram that merges across processes: fixed 0.1 ms buckets (client workers send their
 * sparse counts to the orchestrator, which adds them up). Sorting every sample would cost the client
 * processes CPU that the measurement needs for receiving; a bucket costs one Map update.
 *
 * Latencies here are wall-clock differences between processes on one machine (append ms timestamp →
 * receive time), so sub-0.1 ms precision would be noise anyway.
 */
export const BUCKET_MS = 0.1;
/** Anything slower lands in the last bucket: a minute is far past any bound we report against. */
const MAX_BUCKET = 600_000;

export class Histogram {
  readonly counts = new Map<number, number>();
  total = 0;

  record(ms: number): void {
    const b = Math.min(MAX_BUCKET, Math.max(0, Math.round(ms / BUCKET_MS)));
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
    this.total++;
  }

  /** Sparse [bucket, count] pairs, for IPC. */
  toPairs(): Array<[number, number]> {
    return [...this.counts.entries()];
  }

  addPairs(pairs: ReadonlyArray<readonly [number, number]>): void {
    for (const [b, n] of pairs) {
      this.counts.set(b, (this.counts.get(b) ?? 0) + n);
      this.total += n;
    }
  }

  merge(other: Histogram): void {
    this.addPairs(other.toPairs());
  }

  clear(): void {
    this.counts.clear();
    this.total = 0;
  }

  /**
   * The nearest-rank percentile (p in 0..100) in ms, or null when empty: the smallest value such that
   * at least p % of the samples are ≤ it. Nearest-rank never invents a value between two samples.
   */
  percentile(p: number): number | null {
    return percentileOfCounts(this.counts, this.total, p);
  }
}

export function percentileOfCounts(counts: ReadonlyMap<number, number>, total: number, p: number): number | null {
  if (total <= 0) return null;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  const buckets = [...counts.keys()].sort((a, b) => a - b);
  let seen = 0;
  for (const b of buckets) {
    seen += counts.get(b) ?? 0;
    if (seen >= rank) return round(b * BUCKET_MS);
  }
  const last = buckets[buckets.length - 1];
  return last === undefined ? null : round(last * BUCKET_MS);
}

/** Nearest-rank percentile of raw samples (for small sets and for checking the histogram). */
export function percentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? null;
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

export interface LatencySummary {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

export function summarize(h: Histogram): LatencySummary {
  return { count: h.total, p50: h.percentile(50), p95: h.percentile(95), p99: h.percentile(99), max: h.percentile(100) };
}
