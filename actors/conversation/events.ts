import { z } from "zod";
import { ConversationEvents } from "../../core/events/conversation.js";

/**
 * The events a conversation writes: the CONTRACT §4 types from core, plus
 *
 * - `conversation.archived` `{userId}` (not yet in core/events/conversation.ts; additive), and
 * - extra fields on `assistant.started` that a new owner needs after a crash to end or resume the
 *   reply and settle its reservation: `clientMessageId`, `userId`, `maxTokens`, `inputTokens` (the
 *   prompt estimate the reservation was made with). Clients ignore them (schemas are loose).
 */
const count = z.number().int().nonnegative();

export const ConversationArchivedData = z.object({ userId: z.string().nullable() }).loose();

export const AssistantStartedData = ConversationEvents["assistant.started"].extend({
  clientMessageId: z.string(),
  userId: z.string(),
  maxTokens: count,
  inputTokens: count,
});

export const ConversationDomainEvents = {
  ...ConversationEvents,
  "assistant.started": AssistantStartedData,
  "conversation.archived": ConversationArchivedData,
} as const;

export type ConversationDomainEventType = keyof typeof ConversationDomainEvents;
export type ConversationDomainEvent = {
  [T in ConversationDomainEventType]: { type: T; data: z.infer<(typeof ConversationDomainEvents)[T]> };
}[ConversationDomainEventType];
