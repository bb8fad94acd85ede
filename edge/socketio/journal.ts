import { z } from "zod";
import { compareOffsets } from "../../core/envelope.js";

/**
 * Connection-state recovery, the exact part (CONTRACT §6, I6). See docs/socketio.md.
 *
 * The stock client sends back only the offset L of the LAST chat_event it received, whatever the
 * conversation. Frames reach one connection in the order the server handed them over, so "the
 * client got L" means "the client got every frame handed over before L" and nothing is known of
 * the frames after it. The server therefore keeps, per session, the hand-over order: a JOURNAL of
 * (subscription, offset) entries. On recovery it finds L in the journal; for every subscription the
 * position is the last entry of that subscription at or before L, or the subscription's `base`
 * (where delivery started, or the last entry folded out of the bounded window) when there is none.
 *
 * With native publish the server does not see per-client frames of WebSocket clients. It does not
 * need to: the fan-out numbers every live event (`seq`), a publish ring remembers (seq,
 * conversation, offset) for the node, and a session remembers when each subscription joined its
 * topic. The journal of such a session is rebuilt from the ring when the transport drops — per-event
 * work stays O(1) per node, per-client work happens only at disconnect.
 *
 * Finding L is exact because an offset names one event of the deployment: the append script gives
 * ids `<ms>-<k·P+p>`, unique across conversations (docs/event-store.md, "Entry ids"). The journal
 * holds an offset twice only when the session received an event twice (re-subscribed from an
 * earlier offset) or for ids written before that scheme; `pickLast` stays safe for those.
 */

/** One subscription of a session as the journal sees it. */
export interface JournalSub {
  /** Session-local subscription number (a re-subscription gets a new one). */
  id: number;
  conversationId: string;
  /** Position before the journal window: the `from` of the subscription or the last folded entry. */
  base: string;
}

/** Persisted session (Redis, TTL 2 min): enough for any edge node to recover it. */
export const SessionRecordSchema = z.object({
  v: z.literal(1),
  pid: z.string(),
  tenantId: z.string(),
  userId: z.string(),
  nextSubId: z.number().int().nonnegative(),
  subs: z.array(z.object({ id: z.number().int(), conversationId: z.string(), base: z.string() })),
  /** Hand-over order, oldest first: [subscription id, offset]. */
  journal: z.array(z.tuple([z.number().int(), z.string()])),
  /** The first `confirmed` journal entries surely reached the client (an Engine.IO pong came after them): narrows repeated offsets. */
  confirmed: z.number().int().nonnegative(),
  /** Some hand-overs were folded into `base`: a client that reports no offset cannot be placed. */
  folded: z.boolean(),
  /** Offsets of folded hand-overs that equal a journal entry's (an event handed over twice): L may be either. */
  foldedCollisions: z.array(z.string()),
  /**
   * Offset ranges (after, upTo] of a subscription whose hand-overs are no longer listed individually
   * (evicted from the publish log, or dropped direct entries): with ids that two conversations can
   * share, an L inside another subscription's range may be one of those and cannot be placed.
   */
  blind: z.array(z.tuple([z.number().int(), z.string(), z.string()])).default([]),
});
export type SessionRecord = z.infer<typeof SessionRecordSchema>;

/**
 * Positions after recovery, by subscription id; undefined when L is not in the journal (its window
 * moved past it, or the client lies): the session cannot be recovered exactly, so it is not.
 *
 * Offsets are unique across conversations, so L matches one journal entry and recovery is exact.
 * Should it match several — the session got the same event twice (a re-subscription from an
 * earlier offset), or ids written before the unique-id scheme — see `pickLast`.
 */
export function recoverPositions(
  rec: Pick<SessionRecord, "subs" | "journal" | "confirmed" | "folded" | "foldedCollisions" | "blind">,
  lastOffset: string | undefined,
): Map<number, string> | undefined {
  const pos = new Map<number, string>();
  for (const s of rec.subs) pos.set(s.id, s.base);
  if (lastOffset === undefined) {
    // The client never received a chat_event during this session: nothing handed over was seen,
    // which the bases only reflect when nothing was folded into them.
    return rec.folded ? undefined : pos;
  }
  const at = pickLast(rec, lastOffset);
  if (at < 0) return undefined;
  for (let i = 0; i <= at; i++) {
    const e = rec.journal[i] as [number, string];
    if (pos.has(e[0])) pos.set(e[0], e[1]);
  }
  return pos;
}

/**
 * Index of the journal entry the client received last, given it reported `lastOffset`; -1 if none
 * matches. One match is the answer. With several, only those at or after the acknowledged prefix
 * (`confirmed`: a pong proves every frame handed over before its ping arrived) are candidates, and
 * the EARLIEST of them is taken: frames between are delivered again (detectable by `version`),
 * never skipped.
 */
export function pickLast(rec: Pick<SessionRecord, "journal" | "confirmed" | "foldedCollisions" | "blind">, lastOffset: string): number {
  // The client's last frame may be a folded one (before the window) unless a journal entry was
  // acknowledged: then the window is ambiguous and cannot be used.
  if (rec.confirmed === 0 && rec.foldedCollisions.includes(lastOffset)) return -1;
  const matches: number[] = [];
  rec.journal.forEach(([, off], i) => {
    if (off === lastOffset) matches.push(i);
  });
  if (matches.length === 0) return -1;
  const candidate = matches.find((i) => i >= rec.confirmed - 1);
  // All matches inside the confirmed prefix cannot happen with an honest client; the latest is the
  // least wrong answer then.
  const at = candidate ?? (matches[matches.length - 1] as number);
  if (rec.confirmed === 0) {
    // Nothing in the window was acknowledged, so L may also be a hand-over from before the window
    // that is no longer listed one by one: refuse when L lies in another subscription's blind range.
    const sub = (rec.journal[at] as [number, string])[0];
    for (const [id, after, upTo] of rec.blind) {
      if (id !== sub && compareOffsets(lastOffset, after) > 0 && compareOffsets(lastOffset, upTo) <= 0) return -1;
    }
  }
  return at;
}

/**
 * Live events published on this node, kept per conversation while some WebSocket session of the
 * node follows that conversation through its topic: (seq, offset), the newest `capacity` per
 * conversation. What falls out is summarised (`evicted`: the newest dropped entry) so a journal
 * built later knows how far back it is blind. Per conversation rather than one node-wide ring, so
 * building a session's journal costs in proportion to its own conversations' events, and a busy
 * conversation cannot push a quiet one's history out.
 *
 * Each log is a circular buffer that grows to `capacity` and then overwrites its oldest entry: a
 * push is two array stores and allocates nothing (it runs once per live event, issue 5).
 */
interface ConversationLog {
  seqs: number[];
  offsets: string[];
  /** Physical index of the oldest entry once the buffer is full (0 until then). */
  head: number;
  evictedSeq: number;
  evictedOffset: string | undefined;
}

export class PublishRing {
  private readonly logs = new Map<string, ConversationLog>();

  constructor(readonly capacityPerConversation: number) {
    if (!Number.isInteger(capacityPerConversation) || capacityPerConversation < 1) throw new RangeError(`ring capacity must be ≥ 1, got ${capacityPerConversation}`);
  }

  /** Start keeping `conversationId`'s events (idempotent). */
  track(conversationId: string): void {
    if (!this.logs.has(conversationId)) this.logs.set(conversationId, { seqs: [], offsets: [], head: 0, evictedSeq: 0, evictedOffset: undefined });
  }

  /** Stop keeping them (no topic session of this node follows the conversation any more). */
  untrack(conversationId: string): void {
    this.logs.delete(conversationId);
  }

  push(seq: number, conversationId: string, offset: string): void {
    const log = this.logs.get(conversationId);
    if (!log) return;
    if (log.seqs.length < this.capacityPerConversation) {
      log.seqs.push(seq);
      log.offsets.push(offset);
      return;
    }
    const h = log.head;
    log.evictedSeq = log.seqs[h] as number;
    log.evictedOffset = log.offsets[h] as string;
    log.seqs[h] = seq;
    log.offsets[h] = offset;
    log.head = h + 1 === log.seqs.length ? 0 : h + 1;
  }

  /** Held entries of one conversation with seq ≥ `fromSeq`, oldest first. */
  *entries(conversationId: string, fromSeq: number): Generator<{ seq: number; offset: string }> {
    const log = this.logs.get(conversationId);
    if (!log) return;
    const n = log.seqs.length;
    const at = (i: number): number => {
      const j = log.head + i;
      return j < n ? j : j - n;
    };
    // Binary search (over the logical order, oldest first) for the first seq ≥ fromSeq: seqs increase.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((log.seqs[at(mid)] as number) < fromSeq) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < n; i++) {
      const j = at(i);
      yield { seq: log.seqs[j] as number, offset: log.offsets[j] as string };
    }
  }

  /** The newest entry of `conversationId` that is no longer held, if any. */
  evicted(conversationId: string): { seq: number; offset: string } | undefined {
    const log = this.logs.get(conversationId);
    return log?.evictedOffset === undefined ? undefined : { seq: log.evictedSeq, offset: log.evictedOffset };
  }
}

/** The topic frames a subscription received, out of the publish log (kept when it ends). */
export function topicFrames(ring: PublishRing, sub: LiveSub): DirectEntry[] {
  const t = sub.topic;
  if (!t) return [];
  const out: DirectEntry[] = [];
  for (const e of ring.entries(sub.conversationId, t.joinSeq)) {
    if (compareOffsets(e.offset, t.after) > 0) out.push({ seq: e.seq, n: 0, subId: sub.id, offset: e.offset, live: true });
  }
  return out;
}

/** A subscription of a live session, as the journal builder needs it. */
export interface LiveSub extends JournalSub {
  /** When the subscription joined its uWS topic: fan-out seq at the join, and the offset it joined after. */
  topic?: { joinSeq: number; after: string };
}

/** A frame handed to the client one by one (catch-up, polling): ordered by the fan-out seq at hand-over. */
export interface DirectEntry {
  seq: number;
  /** Session-wide counter of direct hand-overs (orders direct entries with the same seq). */
  n: number;
  subId: number;
  offset: string;
  /** A topic frame copied out of the publish log (when its subscription ended): ordered as live. */
  live?: true;
}

/** Where the session stood when it sent a ping: every ring event ≤ seq and direct entry < n was handed over. */
export interface PingMark {
  seq: number;
  n: number;
}

/**
 * The session's journal at disconnect: direct hand-overs merged with the topic frames from the
 * ring, in the order the client received them, cut to the newest `max` entries (older ones fold into
 * `base`). A direct entry stamped s came after every live frame with seq ≤ s (the fan-out hands a
 * catch-up or listener frame over between publishes), hence the sort key (seq, 0 for ring | 1 for
 * direct, arrival).
 */
export function buildJournal(
  subs: LiveSub[],
  direct: DirectEntry[],
  ring: PublishRing,
  max: number,
  /** From a previous recovery: the entry the client said it had last; it precedes everything else. */
  marker?: [number, string],
  /** The mark of the newest ping the client answered. */
  confirmedMark?: PingMark,
  /** Direct entries the session already dropped to bound its memory: up to where, and their last offset per subscription. */
  trimmed?: { upTo: PingMark; bases: Map<number, string> },
): {
  subs: JournalSub[];
  journal: Array<[number, string]>;
  confirmed: number;
  folded: boolean;
  foldedCollisions: string[];
  blind: Array<[number, string, string]>;
} {
  type Keyed = { seq: number; kind: 0 | 1; n: number; subId: number; offset: string };
  const all: Keyed[] = [];
  const base = new Map<number, string>();
  const blindRanges: Array<[number, string, string]> = [];
  for (const s of subs) {
    const t = trimmed?.bases.get(s.id);
    const raised = t !== undefined && compareOffsets(t, s.base) > 0;
    base.set(s.id, raised ? t : s.base);
    if (raised) blindRanges.push([s.id, s.base, t]);
  }
  for (const d of direct) all.push({ seq: d.seq, kind: d.live ? 0 : 1, n: d.live ? 0 : d.n, subId: d.subId, offset: d.offset });
  // Before `blind` some topic frame of the session is no longer known: nothing there can be placed.
  let blind = Number.NEGATIVE_INFINITY;
  let folded = false;
  for (const s of subs) {
    if (!s.topic) continue;
    const t = s.topic;
    // Events of this topic that fell out of the log were handed over but are no longer listed:
    // they precede the window, so the subscription's position before the window is at least there.
    const ev = ring.evicted(s.conversationId);
    if (ev && ev.seq >= t.joinSeq && compareOffsets(ev.offset, t.after) > 0) {
      const b = base.get(s.id) as string;
      if (compareOffsets(ev.offset, b) > 0) {
        base.set(s.id, ev.offset);
        folded = true;
      }
      blindRanges.push([s.id, t.after, ev.offset]);
      // A direct frame stamped ev.seq went out after ev: only what is older is unplaceable.
      if (ev.seq > blind) blind = ev.seq;
    }
    for (const e of ring.entries(s.conversationId, t.joinSeq)) {
      // seq ≥ joinSeq: a sink that joined while an event was being published receives that very
      // event through the topic; the offset test drops the one event published just before a
      // catch-up join (already handed over directly, or before the start).
      if (compareOffsets(e.offset, t.after) > 0) all.push({ seq: e.seq, kind: 0, n: 0, subId: s.id, offset: e.offset });
    }
  }
  all.sort((a, b) => a.seq - b.seq || a.kind - b.kind || a.n - b.n);
  let cut = all.length > max ? all.length - max : 0;
  while (cut < all.length && (all[cut] as Keyed).seq < blind) cut++;
  if (trimmed) {
    // Everything handed over before the last dropped direct entry is unplaceable too.
    const u = trimmed.upTo;
    const before = (e: Keyed) => e.seq < u.seq || (e.seq === u.seq && (e.kind === 0 || e.n <= u.n));
    while (cut < all.length && before(all[cut] as Keyed)) cut++;
    folded = true;
  }
  if (cut > 0) folded = true;
  for (let i = 0; i < cut; i++) {
    const e = all[i] as Keyed;
    const b = base.get(e.subId);
    // A subscription's offsets only grow along the hand-over order; never move its base back.
    if (b !== undefined && compareOffsets(e.offset, b) > 0) base.set(e.subId, e.offset);
  }
  // Entries handed over before the last answered ping form a prefix of the sorted order.
  let confirmedAll = 0;
  if (confirmedMark) {
    while (confirmedAll < all.length) {
      const e = all[confirmedAll] as Keyed;
      const before = e.kind === 0 ? e.seq <= confirmedMark.seq : e.n < confirmedMark.n;
      if (!before) break;
      confirmedAll++;
    }
  }
  const journal: Array<[number, string]> = [];
  // The marker stays meaningful only while nothing handed over after it was folded away; it was
  // received by definition (the client reported it).
  const withMarker = marker !== undefined && cut === 0;
  if (withMarker) journal.push(marker);
  for (let i = cut; i < all.length; i++) {
    const e = all[i] as Keyed;
    journal.push([e.subId, e.offset]);
  }
  const confirmed = Math.max(0, confirmedAll - cut) + (withMarker ? 1 : 0);
  const kept = new Set(journal.map(([, o]) => o));
  const foldedCollisions = new Set<string>();
  for (let i = 0; i < cut; i++) {
    const o = (all[i] as Keyed).offset;
    if (kept.has(o)) foldedCollisions.add(o);
  }
  return {
    subs: subs.map((s) => ({ id: s.id, conversationId: s.conversationId, base: base.get(s.id) as string })),
    journal,
    confirmed,
    folded,
    foldedCollisions: [...foldedCollisions],
    blind: blindRanges,
  };
}

