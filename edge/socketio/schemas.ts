import { z } from "zod";

/**
 * CONTRACT §6 payloads, validated at the boundary like every HTTP body (CONTRACT §3 limits).
 * Objects are strict: an unknown field is a client bug worth reporting, not something to ignore.
 */
const conversationId = z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, "expected a conversation id");
const offset = z.string().regex(/^\d{1,20}(-\d{1,20})?$/, "expected a stream offset like 1732212345678-0 or 0");

export const SubscribePayload = z.strictObject({ conversationId, from: offset.optional() });
export const UnsubscribePayload = z.strictObject({ conversationId });
export const ChatMessagePayload = z.strictObject({
  conversationId,
  text: z.string().min(1).max(32_000),
  clientMessageId: z.string().min(1).max(64).regex(/^[A-Za-z0-9_.:-]+$/, "expected 1..64 of [A-Za-z0-9_.:-]"),
  maxTokens: z.number().int().positive().max(1_000_000).optional(),
});
export const CancelPayload = z.strictObject({ conversationId });

/** What the client may put in CONNECT's auth (stock client: `auth` plus `pid`/`offset` on recovery). */
export const ConnectAuth = z
  .object({
    token: z.string().max(8192).optional(),
    pid: z.string().max(64).optional(),
    offset: offset.optional(),
  })
  .loose();

export type SubscribeInput = z.infer<typeof SubscribePayload>;
export type ChatMessageInput = z.infer<typeof ChatMessagePayload>;
