import { z } from "zod";

/**
 * Conversation commands. `at` (ISO-8601) and every id are chosen by the sender (the edge / runtime),
 * never by the decider, so a redelivered command decides the same way.
 */
const at = z.iso.datetime({ offset: true });
const id = z.string().min(1).max(200);
const usage = z.object({ inputTokens: z.number().int().nonnegative(), outputTokens: z.number().int().nonnegative() }).strict();
const micros = z.number().int().nonnegative();
/** CONTRACT §3: `clientMessageId` is 1..64 of [A-Za-z0-9_.:-]. */
export const ClientMessageId = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/);
/** Upper bound for maxTokens a command may ask for; the edge applies the tier's own cap first. */
export const MAX_TOKENS_CAP = 32_768;
/**
 * Set by the runtime once it has read the conversation's log and found none of the command's ids
 * used before (repeat-index.ts `needsHistory`): the decider then trusts that over the fingerprints
 * of ids older than the messages it keeps in full, which can only say "perhaps".
 */
const history = z.literal("checked").optional();

export const CreateConversation = z
  .object({
    type: z.literal("create"),
    at,
    title: z.string().max(200).optional(),
    model: z.string().min(1).max(100).optional(),
    ownerId: id,
    tenantId: id,
    projectId: id.nullable().optional(),
  })
  .strict();

export const PostMessage = z
  .object({
    type: z.literal("postMessage"),
    at,
    messageId: id,
    replyId: id,
    clientMessageId: ClientMessageId,
    text: z.string().min(1).max(32_000),
    userId: id,
    maxTokens: z.number().int().min(1).max(MAX_TOKENS_CAP),
    history,
  })
  .strict();

/** The ledger refused the reservation for this message (QUOTA_EXCEEDED / CONCURRENCY_LIMIT). */
export const RejectMessage = z
  .object({
    type: z.literal("reject"),
    at,
    clientMessageId: ClientMessageId,
    code: z.string().min(1),
    message: z.string(),
    history,
  })
  .strict();

export const AppendDelta = z
  .object({ type: z.literal("appendDelta"), at, replyId: id, index: z.number().int().nonnegative(), text: z.string() })
  .strict();

export const CompleteReply = z
  .object({
    type: z.literal("completeReply"),
    at,
    replyId: id,
    finishReason: z.string().min(1).max(64),
    usage,
    costMicros: micros,
  })
  .strict();

/** `replyId` omitted = whatever reply is running (the user's cancel button does not know it). */
export const CancelReply = z
  .object({ type: z.literal("cancelReply"), at, replyId: id.optional(), usage, costMicros: micros })
  .strict();

export const FailReply = z
  .object({
    type: z.literal("failReply"),
    at,
    replyId: id.optional(),
    usage,
    costMicros: micros,
    code: z.string().min(1),
    message: z.string(),
  })
  .strict();

export const ArchiveConversation = z.object({ type: z.literal("archive"), at, userId: id.optional() }).strict();

export const ConversationCommand = z.discriminatedUnion("type", [
  CreateConversation,
  PostMessage,
  RejectMessage,
  AppendDelta,
  CompleteReply,
  CancelReply,
  FailReply,
  ArchiveConversation,
]);

export type CreateConversation = z.infer<typeof CreateConversation>;
export type PostMessage = z.infer<typeof PostMessage>;
export type RejectMessage = z.infer<typeof RejectMessage>;
export type AppendDelta = z.infer<typeof AppendDelta>;
export type CompleteReply = z.infer<typeof CompleteReply>;
export type CancelReply = z.infer<typeof CancelReply>;
export type FailReply = z.infer<typeof FailReply>;
export type ArchiveConversation = z.infer<typeof ArchiveConversation>;
export type ConversationCommand = z.infer<typeof ConversationCommand>;
