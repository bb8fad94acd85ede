import { compareOffsets } from "../envelope.js";

/**
 * Which entries of a stream go to the archive (pure). Stream entry ids start with the append's
 * millisecond timestamp, so "older than the retention" is a comparison of ids, no decoding needed.
 */
export interface PlanOptions {
  nowMs: number;
  retentionMs: number;
  /** At most this many events per segment. */
  maxEvents: number;
  /** At most this many stored bytes (sum of `e`) per segment; a single larger event still gets one. */
  maxBytes: number;
}

/** The first id that is *not* old enough: entries with an id below it may be archived. */
export function cutoffOffset(nowMs: number, retentionMs: number): string {
  const ms = Math.max(0, Math.floor(nowMs - retentionMs));
  return `${ms}-0`;
}

export function isOlderThan(offset: string, cutoff: string): boolean {
  return compareOffsets(offset, cutoff) < 0;
}

/**
 * Split the old prefix of `entries` (oldest first) into segments. Entries at or after the cutoff,
 * and everything after the first such entry, stay: the archive always holds a prefix of the stream.
 */
export function planSegments<T extends { offset: string; bytes: Uint8Array }>(entries: readonly T[], o: PlanOptions): T[][] {
  if (o.maxEvents < 1 || o.maxBytes < 1) throw new RangeError("maxEvents and maxBytes must be ≥ 1");
  const cutoff = cutoffOffset(o.nowMs, o.retentionMs);
  const segments: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const e of entries) {
    if (!isOlderThan(e.offset, cutoff)) break;
    if (current.length > 0 && (current.length >= o.maxEvents || bytes + e.bytes.byteLength > o.maxBytes)) {
      segments.push(current);
      current = [];
      bytes = 0;
    }
    current.push(e);
    bytes += e.bytes.byteLength;
  }
  if (current.length > 0) segments.push(current);
  return segments;
}

/** The smallest id greater than `offset`: XTRIM MINID with it removes exactly the entries ≤ offset. */
export function nextOffset(offset: string): string {
  const [ms = "0", seq = "0"] = offset.split("-");
  return `${ms}-${(BigInt(seq) + 1n).toString()}`;
}
