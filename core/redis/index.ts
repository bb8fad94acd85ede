// The Redis Streams adapter's public surface: a plain list of named exports (no `export *`).
export { createRedis, duplicateRedis, isCluster, type RedisClient, type RedisConnectOptions } from "./connection.js";
export { createRedisEventStore, type RedisEventStoreOptions } from "./event-store.js";
export { StaleHeadError, defineScripts } from "./scripts.js";
export { xrangeRaw, xrangePages, rangeStart, type RawStreamEntry } from "./stream-range.js";
export { StreamConsumer, type ConsumerOptions, type StreamConsumerCounters } from "./consumer.js";
export {
  deadLetters,
  moveToDeadLetters,
  parseDeadLetterId,
  formatDeadLetterId,
  type DeadLetters,
  type DeadLetterEntry,
  type DeadLetterListOptions,
  type DeadLetterMove,
} from "./dead-letters.js";
export { backoffMs, reclaimAfterMs, type BackoffOptions } from "./backoff.js";
export { createRedisEntrySource, type RedisEntrySource } from "./entry-source.js";
export { PartitionLease, membersKey, fenceKey, type PartitionLeaseOptions } from "./lease.js";
