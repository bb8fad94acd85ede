import { tag } from "../../core/keys.js";
import type { RedisClient } from "../../core/redis/connection.js";

/**
 * Conversations of a partition whose reply may be unfinished or unsettled: added before a reply
 * starts, removed once its usage is committed on the ledgers. A worker that acquires the partition
 * walks this set, so a reply whose worker died is ended (and billed) even if no client ever sends
 * another command to that conversation. A stale member costs one load and is removed.
 */
export function runningKey(partition: number): string {
  return `${tag(partition)}:running:conversation`;
}

export async function markRunning(redis: RedisClient, partition: number, conversationId: string): Promise<void> {
  await redis.sadd(runningKey(partition), conversationId);
}

export async function clearRunning(redis: RedisClient, partition: number, conversationId: string): Promise<void> {
  await redis.srem(runningKey(partition), conversationId);
}

export async function listRunning(redis: RedisClient, partition: number): Promise<string[]> {
  return redis.smembers(runningKey(partition));
}
