// The kernel's public surface. Pure modules only: the Redis adapters are imported from
// `core/redis/index.js` and the blob store from `core/blob/index.js`, so a pure consumer of core
// never pulls in an I/O library.
export { loadConfig, parseDuration, ConfigError, ConfigSchema, type Config } from "./config.js";
export { createLogger, type Logger } from "./logger.js";
export {
  TributaryError,
  VersionConflictError,
  DecodeError,
  DependencyError,
  ERROR_STATUS,
  isTributaryError,
  errorMessage,
  type ErrorCode,
  type ErrorBody,
} from "./errors.js";
export { partitionOf, allPartitions, fnv1a32 } from "./partition.js";
export { keys, tag, streamKeys, partitionOfKey, parseStreamKey, type AggregateKind, type StreamRef } from "./keys.js";
export {
  CURRENT_SCHEMA,
  toEnvelope,
  compareOffsets,
  isOffset,
  type Envelope,
  type EventMeta,
  type NewEvent,
  type RecordedEvent,
  type StoredEvent,
} from "./envelope.js";
export { encode, decodeRaw, encodeEvent, decodeEvent, registerUpcaster, type Upcaster } from "./codec.js";
export { chainHash, GENESIS_HASH } from "./chain.js";
export type { EventStore, StreamHead, AppendResult, ReadOptions, LogEntry } from "./event-store.js";
export type { StreamMessage, BatchHandler, ConsumerCounters, DeadLetter } from "./consumer.js";
export {
  ConversationEvents,
  isConversationEventType,
  type ConversationEvent,
  type ConversationEventType,
  type ConversationEventData,
  type Usage,
} from "./events/conversation.js";
export {
  SessionEvents,
  TIERS,
  isSessionEventType,
  type Tier,
  type SessionEvent,
  type SessionEventType,
  type SessionEventData,
} from "./events/session.js";
export {
  LedgerEvents,
  isLedgerEventType,
  userLedgerId,
  projectLedgerId,
  parseLedgerId,
  type LedgerRef,
  type LedgerEvent,
  type LedgerEventType,
  type LedgerEventData,
} from "./events/ledger.js";
