import type { Envelope } from "../../core/envelope.js";
import { TERMINAL, type Accepted, type Follower } from "./load.js";

/**
 * The end-of-run checks, as data: each returns the list of breaks it found (empty = holds), so a
 * failing run names every break at once instead of the first.
 */

/** Every event of a conversation, Redis and archive, through an edge's `format=json` pages. */
export async function readAll(base: string, conversationId: string, token: string): Promise<Envelope[]> {
  const out: Envelope[] = [];
  let from = "0";
  for (;;) {
    const res = await fetch(`${base}/v1/conversations/${conversationId}/events?format=json&from=${from}&limit=500`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status !== 200) throw new Error(`events of ${conversationId}: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { events: Envelope[]; nextOffset: string | null };
    out.push(...page.events);
    if (page.nextOffset === null || page.events.length === 0) return out;
    from = page.nextOffset;
  }
}

/** Versions 1..n without gaps; delta indexes 0..k-1 per reply without duplicates; one end per reply. */
export function checkStream(id: string, evs: Envelope[]): string[] {
  const breaks: string[] = [];
  evs.forEach((e, i) => e.version !== i + 1 && breaks.push(`${id}: event ${i} has version ${e.version}`));
  const deltas = new Map<string, number[]>();
  const started = new Map<string, number>();
  const ended = new Map<string, number>();
  for (const e of evs) {
    const d = e.data as { messageId: string; index: number };
    if (e.type === "assistant.delta") deltas.set(d.messageId, [...(deltas.get(d.messageId) ?? []), d.index]);
    if (e.type === "assistant.started") started.set(d.messageId, (started.get(d.messageId) ?? 0) + 1);
    if (TERMINAL.has(e.type)) ended.set(d.messageId, (ended.get(d.messageId) ?? 0) + 1);
  }
  for (const [reply, idx] of deltas) if (idx.some((v, i) => v !== i)) breaks.push(`${id}: reply ${reply} delta indexes ${idx.join(",")}`);
  for (const [reply, n] of started) if (n !== 1 || ended.get(reply) !== 1) breaks.push(`${id}: reply ${reply} started ${n}× ended ${ended.get(reply) ?? 0}×`);
  for (const reply of ended.keys()) if (!started.has(reply)) breaks.push(`${id}: reply ${reply} ended without a start`);
  // A retried POST (same clientMessageId) must never have made a second message.
  const cmids = evs.filter((e) => e.type === "message.received").map((e) => (e.data as { clientMessageId: string }).clientMessageId);
  for (const [i, c] of cmids.entries()) if (cmids.indexOf(c) !== i) breaks.push(`${id}: clientMessageId ${c} received twice`);
  return breaks;
}

/** Each accepted message is in the log once, and its announced reply started once and ended once. */
export function checkAccepted(evs: Envelope[], accepted: Accepted[]): string[] {
  const breaks: string[] = [];
  for (const a of accepted) {
    const received = evs.filter((e) => e.type === "message.received" && (e.data as { messageId: string }).messageId === a.messageId);
    const how = a.status === undefined ? "" : ` (answered ${a.status} after ${a.attempts} attempt(s) at ${new Date(a.acceptedAt ?? 0).toISOString()})`;
    if (received.length !== 1) breaks.push(`${a.conversationId} ${a.clientMessageId}${how}: message.received ${received.length}×`);
    const starts = evs.filter((e) => e.type === "assistant.started" && (e.data as { replyTo: string }).replyTo === a.messageId);
    if (starts.length !== 1 || (starts[0]?.data as { messageId: string } | undefined)?.messageId !== a.replyId) {
      breaks.push(`${a.conversationId} ${a.clientMessageId}: ${starts.length} replies started, announced ${a.replyId}`);
    }
    const ends = evs.filter((e) => TERMINAL.has(e.type) && (e.data as { messageId: string }).messageId === a.replyId);
    if (ends.length !== 1) breaks.push(`${a.conversationId} ${a.clientMessageId}: reply ${a.replyId} ended ${ends.length}×`);
  }
  return breaks;
}

/** A follower saw exactly versions 1..n of the final log, once each, in order. */
export function checkFollower(f: Follower, evs: Envelope[]): string[] {
  const breaks = [...f.violations];
  if (f.versions.length !== evs.length || f.versions.some((v, i) => v !== i + 1)) {
    breaks.push(`${f.kind} ${f.conversationId}: saw ${f.versions.length} events (last v${f.lastVersion}), log has ${evs.length}`);
  }
  return breaks;
}
