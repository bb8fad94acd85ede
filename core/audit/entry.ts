import type { StreamRef } from "../keys.js";

/**
 * One stored event as it sits in an aggregate stream: the exact bytes the hash chain covers.
 * Audit and replay work on these rather than on decoded events, so the same code checks Redis and
 * the archive byte for byte.
 */
export interface StoredEntry {
  /** Entry id in the aggregate stream ("1732212345678-0"): the envelope offset. */
  offset: string;
  /** The stored msgpack record (stream field `e`). */
  bytes: Uint8Array;
  /** Hex sha256 chain value after this entry (stream field `h`). */
  hash: string;
}

/** `from` exclusive ("0" or absent = the beginning), `to` inclusive, as everywhere in the contract. */
export interface EntryRange {
  from?: string;
  to?: string;
}

/**
 * Where a stream's history comes from. Redis implements it for the recent part
 * (core/redis/entry-source.ts); the archive implements it for the older, trimmed part. Entries are
 * yielded oldest first and lazily, so a long stream is never held in memory.
 */
export interface EntrySource {
  entries(stream: StreamRef, range?: EntryRange): AsyncIterable<StoredEntry>;
}

/** A stream to audit: what it is, and the name to print when it breaks. */
export interface AuditTarget {
  ref: StreamRef;
  /** The stream's key, e.g. `{p3}:es:conversation:abc`. */
  key: string;
}
