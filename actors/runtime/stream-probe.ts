import { streamKeys, type StreamRef } from "../../core/keys.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { SNAPSHOT_AT_FIELD, parseSnapshotAt } from "./snapshots.js";

/**
 * What rehydration needs to know about a stream before reading it: how many events it holds and
 * whether a snapshot was written. One HMGET of the stream's meta hash `{pN}:meta:<kind>:<id>`
 * (`version` is the event store's, `snap` the snapshot pointer's; docs/event-store.md) answers both,
 * so a first load costs:
 *
 * - a new stream (version 0, e.g. the first message of a user on their ledger): this one command,
 *   no read at all;
 * - a young stream (no snapshot): this command and a plain XRANGE, because the Redis stream still
 *   starts at version 1 — the archive-aware read (MULTI: archive index + XRANGE) is only needed
 *   when the stream was trimmed, which the repository detects from the versions it reads;
 * - an old stream: the snapshot, then its tail.
 *
 * The answer is a hint taken before the read: an append that lands in between is caught by the
 * expected version of our own next append (I2), as with any stale state.
 */
export interface StreamProbe {
  probe(ref: StreamRef): Promise<StreamFacts>;
}

export interface StreamFacts {
  /** Events ever appended (the stream's version); 0 = the stream does not exist yet. */
  version: number;
  /** A snapshot pointer is set: look in the blob store. */
  snapshot: boolean;
  /**
   * Where the latest snapshot ends (its version and the offset of its last event), when the pointer
   * records it: the tail after it can then be read while the blob is still being fetched. A hint —
   * the repository checks what it reads against the snapshot it gets.
   */
  snapshotAt?: { version: number; offset: string };
}

/** The probe over the meta hash; `snapshots: false` when no blob store is configured. */
export function metaStreamProbe(redis: RedisClient, partitions: number, opts: { snapshots: boolean }): StreamProbe {
  return {
    async probe(ref) {
      const [version, snap, snapAt] = await redis.hmget(streamKeys(ref, partitions).meta, "version", "snap", SNAPSHOT_AT_FIELD);
      const facts: StreamFacts = { version: version ? Number(version) : 0, snapshot: opts.snapshots && !!snap && Number(snap) > 0 };
      const at = facts.snapshot ? parseSnapshotAt(snapAt) : undefined;
      if (at && at.version === Number(snap)) facts.snapshotAt = at;
      return facts;
    },
  };
}
