export {
  createConversationDecider,
  conversationDecider,
  conversationStatus,
  runningReply,
  messageRecord,
  lookupClientMessage,
  type ConversationDecider,
  type ConversationState,
  type MessageLookup,
} from "./decider.js";
export { createConversationMachine, type ConversationMachine, type ConversationMachineOptions } from "./machine.js";
export {
  ConversationCommand,
  CreateConversation,
  PostMessage,
  RejectMessage,
  AppendDelta,
  CompleteReply,
  CancelReply,
  FailReply,
  ArchiveConversation,
  ClientMessageId,
  MAX_TOKENS_CAP,
} from "./commands.js";
export {
  ConversationDomainEvents,
  AssistantStartedData,
  ConversationArchivedData,
  type ConversationDomainEvent,
  type ConversationDomainEventType,
} from "./events.js";
export {
  ConversationContext,
  MessageRecord,
  RunningReply,
  CONVERSATION_STATES,
  initialConversationContext,
  type ConversationStatus,
} from "./state.js";
