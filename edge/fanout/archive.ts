import { toEnvelope, type Envelope, type RecordedEvent } from "../../core/envelope.js";
import type { ReadOptions } from "../../core/event-store.js";
import type { StreamRef } from "../../core/keys.js";
import type { OlderEventsReader } from "./types.js";

/**
 * The fan-out's archive seam on top of core's archive+Redis reader
 * (`createArchivedEventReader(redis, blob, partitions)` in core/redis/archived-reader.ts):
 *
 *   new Fanout({ …, olderEvents: olderEventsFrom(archivedReader) })
 *
 * That reader yields the archive and then Redis in one ordered sequence; the fan-out stops
 * iterating where Redis takes over, so only the archived part is actually used.
 */
export interface EventsAcrossArchive {
  events(ref: StreamRef, opts?: { from?: ReadOptions["from"]; pageSize?: number }): AsyncIterable<RecordedEvent>;
}

export function olderEventsFrom(reader: EventsAcrossArchive): OlderEventsReader {
  return async function* (conversationId: string, from: string): AsyncGenerator<Envelope> {
    for await (const e of reader.events({ kind: "conversation", id: conversationId }, { from, pageSize: 256 })) yield toEnvelope(e);
  };
}
