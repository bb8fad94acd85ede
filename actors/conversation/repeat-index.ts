import { fpsAdd, fpsMayHave } from "../fingerprint-set.js";
import type { ConversationContext, MessageRecord } from "./state.js";

/**
 * The conversation's memory of the ids it has accepted, kept bounded: the last few messages in full
 * (`recent`), every id ever accepted as a fingerprint (`seen`). What `recent` holds is answered
 * exactly from state; an id `seen` may hold but `recent` does not is for the log to settle
 * (`needsHistory`), which the runtime reads before it decides (conversation-process.ts) and then
 * says so on the command (`history: "checked"`).
 *
 * Pure functions of the context; the machine (machine.ts) calls them from its guards and actions.
 */
const cKey = (clientMessageId: string) => `c:${clientMessageId}`;
const iKey = (id: string) => `i:${id}`;

export function recentByClientId(ctx: ConversationContext, clientMessageId: string): MessageRecord | undefined {
  for (let i = ctx.recent.length - 1; i >= 0; i--) if (ctx.recent[i]!.clientMessageId === clientMessageId) return ctx.recent[i];
  return undefined;
}

export function recentByReplyId(ctx: ConversationContext, replyId: string): MessageRecord | undefined {
  if (replyId === "") return undefined;
  for (let i = ctx.recent.length - 1; i >= 0; i--) if (ctx.recent[i]!.replyId === replyId) return ctx.recent[i];
  return undefined;
}

/** `id` is the messageId or replyId of a message in `recent`. */
export function recentIdTaken(ctx: ConversationContext, id: string): boolean {
  return ctx.recent.some((r) => r.messageId === id || r.replyId === id);
}

/** Whether a clientMessageId was perhaps accepted before `recent` (a fingerprint hit, maybe a collision). */
export function clientIdMaybeOlder(ctx: ConversationContext, clientMessageId: string): boolean {
  return recentByClientId(ctx, clientMessageId) === undefined && fpsMayHave(ctx.seen, cKey(clientMessageId));
}

/** Whether a messageId/replyId was perhaps used before `recent`. */
export function idMaybeOlder(ctx: ConversationContext, id: string): boolean {
  return !recentIdTaken(ctx, id) && fpsMayHave(ctx.seen, iKey(id));
}

/**
 * A new message's ids cannot be judged from state alone: one of them may have been used before the
 * messages kept in full. Rare — a repeat older than RECENT_MESSAGES, or a fingerprint collision
 * (about 3 × ids-so-far / 2⁵³ per message).
 */
export function needsHistory(ctx: ConversationContext, ids: { clientMessageId: string; messageId?: string; replyId?: string }): boolean {
  if (recentByClientId(ctx, ids.clientMessageId) !== undefined) return false; // answered from state
  return (
    fpsMayHave(ctx.seen, cKey(ids.clientMessageId)) ||
    (ids.messageId !== undefined && idMaybeOlder(ctx, ids.messageId)) ||
    (ids.replyId !== undefined && idMaybeOlder(ctx, ids.replyId))
  );
}

/** `message.received`: remember it in full (dropping the oldest beyond `window`) and for ever as fingerprints. */
export function rememberMessage(
  ctx: ConversationContext,
  rec: Omit<MessageRecord, "replyId" | "replyStatus">,
  window: number,
): Pick<ConversationContext, "recent" | "seen"> {
  const kept = ctx.recent.length >= window ? ctx.recent.slice(ctx.recent.length - window + 1) : ctx.recent;
  return {
    recent: [...kept, { ...rec, replyId: "", replyStatus: "streaming" }],
    seen: fpsAdd(fpsAdd(ctx.seen, cKey(rec.clientMessageId)), iKey(rec.messageId)),
  };
}

/** `assistant.started`: the message's reply id. */
export function rememberReply(ctx: ConversationContext, clientMessageId: string, replyId: string): Pick<ConversationContext, "recent" | "seen"> {
  return {
    recent: updateRecent(ctx, clientMessageId, (r) => ({ ...r, replyId })),
    seen: fpsAdd(ctx.seen, iKey(replyId)),
  };
}

/** A reply ended: its message's record says how. */
export function withReplyStatus(ctx: ConversationContext, clientMessageId: string, replyStatus: MessageRecord["replyStatus"]): MessageRecord[] {
  return updateRecent(ctx, clientMessageId, (r) => ({ ...r, replyStatus }));
}

function updateRecent(ctx: ConversationContext, clientMessageId: string, f: (r: MessageRecord) => MessageRecord): MessageRecord[] {
  for (let i = ctx.recent.length - 1; i >= 0; i--) {
    if (ctx.recent[i]!.clientMessageId !== clientMessageId) continue;
    const out = ctx.recent.slice();
    out[i] = f(ctx.recent[i]!);
    return out;
  }
  return ctx.recent;
}
