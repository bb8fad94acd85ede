import type { AuditSources } from "../../core/audit/walker.js";
import { createBlobStore } from "../../core/blob/create.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import { createRedisEntrySource, type RedisEntrySource } from "../../core/redis/entry-source.js";
import type { CliContext } from "./context.js";

/**
 * Where `replay` and `audit verify` read a stream's history from: the archive (older events trimmed
 * from Redis) and then Redis, without gaps or duplicates.
 *
 * The archived reader (core/redis/archived-reader.ts) is itself a complete EntrySource: each page
 * reads the archive index and XRANGEs the stream in one MULTI, so a concurrent archive + trim can
 * never make it skip events. It is therefore the `live` source here and `archive` stays unset —
 * `history()`'s archive-then-live merge is for sources that cannot snapshot both sides together.
 * A stream that was never archived reads straight from Redis. Stored bytes and chain values come
 * back exactly as written, so audit verifies the chain across the archive/Redis boundary.
 */
export interface CliHistory extends AuditSources {
  /** Redis-only view: head records, stream keys, SCAN over every master. */
  redis: RedisEntrySource;
}

export async function historySources(ctx: CliContext): Promise<CliHistory> {
  const redis = await ctx.redis();
  const partitions = ctx.config.PARTITIONS;
  const redisOnly = createRedisEntrySource(redis, partitions);
  const live = createArchivedEventReader(redis, createBlobStore(ctx.config), partitions);
  return { live, head: redisOnly.head, redis: redisOnly };
}
