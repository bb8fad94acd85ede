import { compareOffsets } from "../envelope.js";
import type { StreamRef } from "../keys.js";
import type { EntryRange, EntrySource, StoredEntry } from "./entry.js";

/**
 * The seam for the archive: a stream's full history = what the archive holds (older, trimmed from
 * Redis) followed by what Redis still holds, without gaps or duplicates.
 *
 * The archive is read first; Redis is then read from after the last archived offset. An event that
 * is in both (archived but not yet trimmed) is therefore yielded once, from the archive. With no
 * archive this is simply the live source.
 */
export interface HistorySources {
  /** Redis (or any source holding the recent tail). */
  live: EntrySource;
  /** Older entries moved out of Redis; optional until the archive exists. */
  archive?: EntrySource | undefined;
}

export async function* history(sources: HistorySources, stream: StreamRef, range: EntryRange = {}): AsyncGenerator<StoredEntry> {
  let after = range.from;
  if (sources.archive) {
    for await (const entry of sources.archive.entries(stream, range)) {
      yield entry;
      after = entry.offset;
    }
  }
  // The archive may already have passed `to`; then Redis has nothing more to add.
  if (range.to !== undefined && after !== undefined && compareOffsets(after, range.to) >= 0) return;
  const liveRange: EntryRange = {};
  if (after !== undefined) liveRange.from = after;
  if (range.to !== undefined) liveRange.to = range.to;
  yield* sources.live.entries(stream, liveRange);
}
