/**
 * pN = hash(aggregateId) mod P. FNV-1a (32 bit) is stable across processes and languages, cheap,
 * and spreads short ids well; it must never change once data exists, because every key of an
 * aggregate carries its partition's hash tag.
 */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function partitionOf(aggregateId: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be ≥ 1, got ${partitions}`);
  return fnv1a32(aggregateId) % partitions;
}

export function allPartitions(partitions: number): number[] {
  return Array.from({ length: partitions }, (_, i) => i);
}
