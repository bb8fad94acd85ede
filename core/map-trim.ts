/**
 * Bounded caches kept in a Map (insertion order = age): delete the oldest entries down to `keep`,
 * in one pass, leaving the keys `pinned` says must stay. Returns how many were deleted.
 *
 * Why a pass for many entries, not one `keys().next()` per eviction: V8 leaves a deleted entry's
 * slot empty until the table is rebuilt, and every new iterator walks the empty slots at the front
 * again — evicting the oldest entry one at a time costs O(entries evicted since the last rebuild)
 * each, which showed in the actor runtime's profile (~2 % of a worker's CPU at 10,000 cached heads).
 * Callers let the map grow a little past its bound and trim it back in one go.
 */
export function trimOldest<K, V>(map: Map<K, V>, keep: number, pinned?: (key: K) => boolean): number {
  const excess = map.size - keep;
  let deleted = 0;
  for (const key of map.keys()) {
    if (deleted >= excess) break;
    if (pinned?.(key)) continue;
    map.delete(key);
    deleted++;
  }
  return deleted;
}

/** How far past its bound a cache may grow before it is trimmed: 1/16 of it, at least one entry. */
export function trimSlack(bound: number): number {
  return Math.max(1, Math.ceil(bound / 16));
}
