import { z } from "zod";

/**
 * CONTRACT §4: conversation event types and their `data`. Actors produce them, projections and the
 * edge consume them; both take the schemas from here. The contract only grows, so schemas are
 * `.loose()`: an older reader ignores fields a newer writer added.
 */
const usage = z.object({ inputTokens: z.number().int().nonnegative(), outputTokens: z.number().int().nonnegative() });
const micros = z.number().int().nonnegative();

export const ConversationEvents = {
  "conversation.created": z
    .object({
      title: z.string(),
      model: z.string(),
      ownerId: z.string(),
      tenantId: z.string(),
      projectId: z.string().nullable(),
    })
    .loose(),
  "message.received": z
    .object({ messageId: z.string(), clientMessageId: z.string(), userId: z.string(), text: z.string() })
    .loose(),
  "message.rejected": z.object({ clientMessageId: z.string(), code: z.string(), message: z.string() }).loose(),
  "assistant.started": z.object({ messageId: z.string(), replyTo: z.string(), model: z.string() }).loose(),
  "assistant.delta": z.object({ messageId: z.string(), index: z.number().int().nonnegative(), text: z.string() }).loose(),
  "assistant.completed": z
    .object({ messageId: z.string(), text: z.string(), finishReason: z.string(), usage, costMicros: micros })
    .loose(),
  "assistant.cancelled": z
    .object({ messageId: z.string(), usage, costMicros: micros, code: z.string().optional(), message: z.string().optional() })
    .loose(),
  "assistant.failed": z
    .object({ messageId: z.string(), usage, costMicros: micros, code: z.string().optional(), message: z.string().optional() })
    .loose(),
  /** Additive to CONTRACT §4: the conversation is closed to new messages. */
  "conversation.archived": z.object({ userId: z.string().nullable() }).loose(),
} as const;

export type ConversationEventType = keyof typeof ConversationEvents;
export type ConversationEventData<T extends ConversationEventType> = z.infer<(typeof ConversationEvents)[T]>;
export type Usage = z.infer<typeof usage>;

export type ConversationEvent = {
  [T in ConversationEventType]: { type: T; data: ConversationEventData<T> };
}[ConversationEventType];

export function isConversationEventType(t: string): t is ConversationEventType {
  return Object.hasOwn(ConversationEvents, t);
}
