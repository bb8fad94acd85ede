import type { NewEvent, RecordedEvent } from "./envelope.js";
import type { StreamRef } from "./keys.js";

/** What the store knows of a stream without reading it (the `{pN}:meta:…` hash). */
export interface StreamHead {
  /** Number of events ever appended (0 = empty); versions count from 1 without gaps. */
  version: number;
  /** Offset of the last event, or null when empty. */
  lastOffset: string | null;
  /** Chain value after the last event (GENESIS_HASH when empty). */
  hash: string;
}

export interface AppendResult {
  /** True when the command id had been appended before: this is the first append's result (I2). */
  duplicate: boolean;
  /** Version of the first and last event of this append. */
  fromVersion: number;
  toVersion: number;
  /** Offsets of the appended events, in order. */
  offsets: string[];
  /** Chain value after the last event. */
  hash: string;
}

export interface AppendOptions {
  /**
   * The chain value after event `expectedVersion` as the caller saw it — the history its decision
   * rests on. When given, a stream at `expectedVersion` whose head is another hash (its tail was
   * lost and rewritten, e.g. after a failover to a replica that lacked the caller's last events)
   * refuses the append with VersionConflictError (actual = expected) instead of appending on top of
   * a history the caller never saw. Without it the store checks the version only.
   */
  expectedHash?: string;
  /**
   * How long a retry of this command id is answered from its first result (its dedupe record),
   * in ms: at most the store's IDEM_TTL, which is also the default. For appends whose retries can
   * only come soon and which the aggregate answers idempotently anyway (a reply's deltas carry
   * their index), so that the bulk of a chat's appends does not hold Redis memory for a day
   * (docs/operations.md, "Sizing Redis memory").
   */
  dedupeTtlMs?: number;
}

export interface ReadOptions {
  /** Exclusive lower bound (CONTRACT §5); "0" or undefined = from the beginning. */
  from?: string;
  /** Inclusive upper bound. */
  to?: string;
  limit?: number;
}

/** One entry of a partition log `{pN}:log`: which stream got which event. */
export interface LogEntry {
  partition: number;
  /** Entry id in the partition log. */
  logOffset: string;
  event: RecordedEvent;
}

/**
 * The event store (I1, I2). `append` is atomic for the whole batch: every event lands in the
 * aggregate stream and the partition log, or none does.
 */
export interface EventStore {
  /**
   * Append `events` if the stream is at `expectedVersion` (0 = new stream). Throws
   * VersionConflictError otherwise. A `commandId` already appended to this stream returns the
   * first append's result with `duplicate: true` and appends nothing.
   */
  append(stream: StreamRef, expectedVersion: number, events: NewEvent[], commandId: string, opts?: AppendOptions): Promise<AppendResult>;
  read(stream: StreamRef, opts?: ReadOptions): Promise<RecordedEvent[]>;
  head(stream: StreamRef): Promise<StreamHead>;
  /** Entries of one partition log after `from` (exclusive). */
  readLog(partition: number, opts?: ReadOptions): Promise<LogEntry[]>;
  /**
   * Durability barrier for an answer derived from what was READ (a duplicate's first answer, a
   * refusal) rather than from an append this caller just made: resolves once everything the store
   * could have read of the stream is as durable as an acknowledged append (`wait-replica`: a replica
   * has it; `local`: at once). Throws UNAVAILABLE when it cannot be confirmed. Optional: stores
   * without replication need none.
   */
  confirm?(stream: StreamRef): Promise<void>;
}
