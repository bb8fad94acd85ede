import { z } from "zod";
import { fingerprintSet } from "../fingerprint-set.js";

/**
 * The conversation's context (what the machine carries besides its state value). JSON-safe by
 * construction (plain objects, integers, strings), so a persisted snapshot round-trips through
 * JSON and the blob store; the zod schema validates snapshots on the way back in.
 */
const count = z.number().int().nonnegative();

/**
 * How many accepted messages the state keeps in full (oldest dropped first). A repeat of one of
 * them is answered from state; an older one is found through `seen` and read back from the log
 * (the runtime does it: conversation-process.ts). Bounded so that a conversation's memory and
 * snapshot size stop growing with its message count (docs/reliability.md, "Soak").
 */
export const RECENT_MESSAGES = 64;

/** What an accepted message left behind, to answer repeats (CONTRACT §3). */
export const MessageRecord = z.object({
  clientMessageId: z.string(),
  messageId: z.string(),
  replyId: z.string(),
  /** textDigest(text): a repeat with the same text is the same message, with another text a CONFLICT. */
  digest: z.string(),
  /** Stream version of its `message.received`: the runtime reads that entry's offset for the 201 body. */
  version: count,
  replyStatus: z.enum(["streaming", "completed", "cancelled", "failed"]),
});
export type MessageRecord = z.infer<typeof MessageRecord>;

/**
 * The running reply: everything a new owner needs after a crash to resume or end it — the id (also
 * the reservation id on the ledgers), the next delta index, the text so far, the cap, who pays.
 */
export const RunningReply = z.object({
  replyId: z.string(),
  replyTo: z.string(),
  clientMessageId: z.string(),
  userId: z.string(),
  model: z.string(),
  maxTokens: count,
  inputTokens: count,
  /** The user message being answered (responders derive / send it; a resumed reply needs it again). */
  prompt: z.string(),
  nextIndex: count,
  text: z.string(),
  startedVersion: count,
});
export type RunningReply = z.infer<typeof RunningReply>;

export const ConversationContext = z.object({
  /** Events folded so far = the stream version this state reflects. */
  version: count,
  title: z.string(),
  model: z.string(),
  ownerId: z.string(),
  tenantId: z.string(),
  projectId: z.string().nullable(),
  /** The last RECENT_MESSAGES accepted messages, oldest first (reply commands find theirs here). */
  recent: z.array(MessageRecord),
  /**
   * Fingerprints of every id ever accepted here — `c:<clientMessageId>`, `i:<messageId>`,
   * `i:<replyId>` — so a repeat or a reused id older than `recent` is still noticed (and then looked
   * up in the log). Never forgets: CONTRACT §3 answers a repeated clientMessageId forever.
   */
  seen: fingerprintSet(),
  reply: RunningReply.nullable(),
  /** The user text of the last message.received, until its assistant.started arrives (same batch). */
  pendingPrompt: z.string().nullable(),
  totals: z.object({ messages: count, rejected: count, replies: count, inputTokens: count, outputTokens: count, costMicros: count }),
});
export type ConversationContext = z.infer<typeof ConversationContext>;

export const CONVERSATION_STATES = ["new", "idle", "replying", "archived"] as const;
export type ConversationStatus = (typeof CONVERSATION_STATES)[number];

export function initialConversationContext(): ConversationContext {
  return {
    version: 0,
    title: "",
    model: "",
    ownerId: "",
    tenantId: "",
    projectId: null,
    recent: [],
    seen: [],
    reply: null,
    pendingPrompt: null,
    totals: { messages: 0, rejected: 0, replies: 0, inputTokens: 0, outputTokens: 0, costMicros: 0 },
  };
}
