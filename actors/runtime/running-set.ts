import { tag } from "../../core/keys.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { TickBatch } from "./tick-batch.js";

/**
 * Conversations of a partition whose reply may be unfinished or unsettled: added before a reply
 * starts, removed once its usage is committed on the ledgers. A worker that acquires the partition
 * walks this set, so a reply whose worker died is ended (and billed) even if no client ever sends
 * another command to that conversation. A stale member costs one load and is removed.
 */
export function runningKey(partition: number): string {
  return `${tag(partition)}:running:conversation`;
}

// Marks of one partition made in the same tick (the messages of one consumer batch) go out as one
// SADD; each caller still resolves only once its member is stored (tick-batch.ts).
const marks = new WeakMap<RedisClient, TickBatch<number, string>>();
const clears = new WeakMap<RedisClient, TickBatch<number, string>>();

function batcher(map: WeakMap<RedisClient, TickBatch<number, string>>, redis: RedisClient, op: "sadd" | "srem"): TickBatch<number, string> {
  let b = map.get(redis);
  if (!b) {
    b = new TickBatch((p, ids) => (op === "sadd" ? redis.sadd(runningKey(p), ...ids) : redis.srem(runningKey(p), ...ids)));
    map.set(redis, b);
  }
  return b;
}

export async function markRunning(redis: RedisClient, partition: number, conversationId: string): Promise<void> {
  await batcher(marks, redis, "sadd").add(partition, conversationId);
}

export async function clearRunning(redis: RedisClient, partition: number, conversationId: string): Promise<void> {
  await batcher(clears, redis, "srem").add(partition, conversationId);
}

export async function listRunning(redis: RedisClient, partition: number): Promise<string[]> {
  return redis.smembers(runningKey(partition));
}
