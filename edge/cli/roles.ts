import { hostname } from "node:os";
import { createBlobStore } from "../../core/blob/create.js";
import type { BlobStore } from "../../core/blob/index.js";
import type { Config } from "../../core/config.js";
import type { Logger } from "../../core/logger.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { PartitionLease } from "../../core/redis/lease.js";
import { responderFromConfig } from "../../actors/responders/index.js";
import { ActorWorker } from "../../actors/runtime/worker.js";

/**
 * Builders for the process roles, shared by `tributary worker` and `tributary start`, so both run
 * exactly the same wiring.
 */
export function eventStoreFor(config: Config, redis: RedisClient) {
  return createRedisEventStore(redis, { partitions: config.PARTITIONS, idemTtlMs: config.IDEM_TTL, durability: config.DURABILITY });
}

export function buildWorker(config: Config, redis: RedisClient, log: Logger, blobs: BlobStore = createBlobStore(config)): ActorWorker {
  const owner = `${hostname()}-${process.pid}`;
  const lease = new PartitionLease({ redis, role: "actors", partitions: config.PARTITIONS, owner, log });
  return new ActorWorker({
    config,
    redis,
    store: eventStoreFor(config, redis),
    reader: createArchivedEventReader(redis, blobs, config.PARTITIONS),
    blobs,
    responder: responderFromConfig(config),
    ownership: lease,
    log,
    consumerName: owner,
    consumer: { claimIdleMs: 15_000 },
  });
}

/** Resolve on SIGINT / SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
}
