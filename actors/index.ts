// The actors' public surface for edge/ and the CLI. Named exports only (STYLE §10); the runtime's
// own surface is actors/runtime/index.ts.
export {
  accept,
  reject,
  fold,
  decideAndEvolve,
  rejectionError,
  type Decider,
  type Decision,
  type DecidedEvent,
  type Rejection,
} from "./decider.js";
export { textDigest } from "./digest.js";

export {
  createConversationDecider,
  conversationDecider,
  conversationStatus,
  runningReply,
  messageRecord,
  lookupClientMessage,
  ConversationCommand,
  ConversationDomainEvents,
  ClientMessageId,
  MAX_TOKENS_CAP,
  type ConversationDecider,
  type ConversationState,
  type ConversationStatus,
  type ConversationDomainEvent,
  type MessageLookup,
} from "./conversation/index.js";

export {
  createSessionDecider,
  sessionDecider,
  sessionStatus,
  SessionCommand,
  type SessionDecider,
  type SessionState,
  type SessionStatus,
} from "./session/index.js";

export {
  createLedgerDecider,
  createBudgetDecider,
  ledgerDecider,
  budgetDecider,
  reservationStatus,
  quotaView,
  budgetView,
  LedgerCommand,
  BudgetCommand,
  DEFAULT_RESERVATION_TTL_MS,
  type LedgerState,
  type UserLedgerDecider,
  type BudgetDecider,
  type QuotaView,
  type BudgetView,
} from "./ledger/index.js";

export {
  DEFAULT_TIERS,
  DEFAULT_PRICES,
  DEFAULT_MODEL,
  PriceTable,
  parsePriceTable,
  priceOf,
  costMicros,
  estimateTokens,
  estimatePromptTokens,
  reservationFor,
  utcDay,
  nextMidnight,
  tierRank,
  type TierLimits,
  type TierTable,
  type ReservationAmounts,
} from "./economics/index.js";

export {
  createSimulatedResponder,
  createOpenAIResponder,
  responderFromConfig,
  simulatedPieces,
  type Responder,
  type ResponderRequest,
  type ResponderChunk,
  type ChatMessage,
  type Usage,
} from "./responders/index.js";
