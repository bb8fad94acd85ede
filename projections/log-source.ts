import { keys } from "../core/keys.js";
import type { RedisClient } from "../core/redis/connection.js";
import { xrangeRaw } from "../core/redis/stream-range.js";

/** One entry of a partition log `{pN}:log` (fields k, o, e, h as raw bytes). */
export interface LogRecord {
  partition: number;
  /** Entry id in the partition log. */
  id: string;
  fields: Map<string, Buffer>;
}

/**
 * Where the projector, rebuild and reconcile read partition logs from: the read seam. The Redis
 * implementation reads `{pN}:log`; once the archiver trims Redis, an implementation that reads the
 * archive's segments first and then Redis plugs in here without touching the projection code.
 */
export interface LogSource {
  /** Entries of `partition` strictly after `after` ("0-0" = the beginning), oldest first, at most `limit`, up to `to` inclusive. */
  range(partition: number, after: string, opts: { limit: number; to?: string }): Promise<LogRecord[]>;
}

export function redisLogSource(redis: RedisClient): LogSource {
  return {
    async range(partition, after, opts) {
      const entries = await xrangeRaw(redis, keys.log(partition), {
        from: after === "0-0" ? "0" : after,
        ...(opts.to === undefined ? {} : { to: opts.to }),
        limit: opts.limit,
      });
      return entries.map((e) => ({ partition, id: e.id, fields: e.fields }));
    },
  };
}
