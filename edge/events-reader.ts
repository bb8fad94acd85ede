import { toEnvelope } from "../core/envelope.js";
import type { EventStore } from "../core/event-store.js";
import type { EventPage, EventReader } from "./deps.js";

/**
 * `GET …/events?format=json` pages over the event store's `read` (exclusive `from`), so when the
 * store spans the archive the pages do too. One extra event is read to tell "this page reached the
 * end" (nextOffset null) from "there is more" without a second round trip.
 */
export function createEventReader(store: Pick<EventStore, "read">): EventReader {
  return {
    async page(conversationId, from, limit): Promise<EventPage> {
      const recorded = await store.read({ kind: "conversation", id: conversationId }, { from, limit: limit + 1 });
      const more = recorded.length > limit;
      const events = recorded.slice(0, limit).map(toEnvelope);
      const last = events[events.length - 1];
      return { events, nextOffset: more && last ? last.offset : null };
    },
  };
}
