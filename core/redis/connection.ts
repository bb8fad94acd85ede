import { Cluster, Redis } from "ioredis";
import type { Config } from "../config.js";

/**
 * One client type for both deployments: a single Redis (REDIS_URL) or a Redis Cluster
 * (REDIS_CLUSTER_NODES). Every multi-key operation we issue stays inside one `{pN}` slot, so the
 * same code runs on both.
 */
export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  /** Connection name shown by CLIENT LIST, for operators. */
  name?: string;
  /** Give up quickly instead of queueing commands while Redis is down (CLI, health checks). */
  failFast?: boolean;
}

export function createRedis(
  cfg: Pick<Config, "REDIS_URL" | "REDIS_CLUSTER_NODES"> & Partial<Pick<Config, "REDIS_KEY_PREFIX">>,
  opts: RedisConnectOptions = {},
): RedisClient {
  const keyPrefix = cfg.REDIS_KEY_PREFIX ?? "";
  const common = {
    ...(keyPrefix ? { keyPrefix } : {}),
    connectionName: opts.name ?? "tributary",
    maxRetriesPerRequest: opts.failFast ? 1 : 20,
    enableOfflineQueue: true,
    // Commands issued in the same tick share one write: many concurrent appends cost one syscall.
    // Blocking reads always run on duplicated connections of their own, so nothing waits behind them.
    enableAutoPipelining: true,
    lazyConnect: false,
  };
  if (cfg.REDIS_CLUSTER_NODES && cfg.REDIS_CLUSTER_NODES.length > 0) {
    const nodes = cfg.REDIS_CLUSTER_NODES.map((hp) => {
      const i = hp.lastIndexOf(":");
      return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
    });
    return new Cluster(nodes, {
      redisOptions: common,
      ...(keyPrefix ? { keyPrefix } : {}),
      // Partitions hash to fixed slots; following MOVED/ASK during a failover is all we need.
      clusterRetryStrategy: (times) => (opts.failFast && times > 2 ? null : Math.min(100 * times, 2000)),
      enableReadyCheck: true,
      slotsRefreshTimeout: 2000,
    });
  }
  return new Redis(cfg.REDIS_URL, {
    ...common,
    retryStrategy: (times) => (opts.failFast && times > 2 ? null : Math.min(50 * times, 2000)),
  });
}

/** A second connection for blocking reads (XREADGROUP BLOCK must not hold up other commands). */
export function duplicateRedis(client: RedisClient): RedisClient {
  return isCluster(client) ? client.duplicate() : client.duplicate();
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}
