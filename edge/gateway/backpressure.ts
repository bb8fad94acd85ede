import { TributaryError } from "../../core/errors.js";
import { keys } from "../../core/keys.js";
import type { RedisClient } from "../../core/redis/connection.js";

/**
 * Backpressure before a command is accepted (DESIGN §Edge): when a partition's command stream holds
 * more work than its workers are getting through, new commands are refused with 503 OVERLOADED and
 * Retry-After instead of queueing without bound (the 5 s answer deadline would be missed anyway).
 *
 * Backlog = the `actors` group's lag (entries not yet delivered) + its pending entries (delivered,
 * not yet acknowledged). Before the group exists (no worker has started) it is the stream length.
 * The figure is cached per partition for `cacheMs`, so a burst costs one XINFO per partition.
 */
export interface BackpressureOptions {
  /** Backlog above which commands are refused. */
  maxBacklog: number;
  /** Consumer group of the actor workers. */
  group?: string;
  cacheMs?: number;
  /** Seconds a refused client should wait. */
  retryAfterSeconds?: number;
}

export interface Backpressure {
  /** Throws 503 OVERLOADED when partition `p`'s command backlog is over the limit. */
  check(partition: number): Promise<void>;
  backlog(partition: number): Promise<number>;
}

/** XINFO GROUPS reply (RESP2: an array of flat field/value arrays) → the figures we need. */
export function backlogFromGroups(reply: unknown, group: string): number | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (const g of reply) {
    if (!Array.isArray(g)) continue;
    const f = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) f.set(String(g[i]), g[i + 1]);
    if (f.get("name") !== group) continue;
    const pending = Number(f.get("pending") ?? 0);
    const lagRaw = f.get("lag");
    if (lagRaw === null || lagRaw === undefined) return undefined;
    return Number(lagRaw) + pending;
  }
  return undefined;
}

export function createBackpressure(redis: RedisClient, opts: BackpressureOptions): Backpressure {
  const group = opts.group ?? "actors";
  const cacheMs = opts.cacheMs ?? 250;
  const cache = new Map<number, { at: number; value: Promise<number> }>();

  async function measure(p: number): Promise<number> {
    const stream = keys.cmd(p);
    let groups: unknown;
    try {
      groups = await redis.xinfo("GROUPS", stream);
    } catch {
      // ERR no such key: nothing queued at all.
      return 0;
    }
    // No group yet, or Redis cannot compute lag (after XDEL): fall back to the stream length.
    return backlogFromGroups(groups, group) ?? (await redis.xlen(stream));
  }

  async function backlog(p: number): Promise<number> {
    const now = Date.now();
    const hit = cache.get(p);
    if (hit && now - hit.at < cacheMs) return hit.value;
    const value = measure(p);
    cache.set(p, { at: now, value });
    value.catch(() => cache.delete(p));
    return value;
  }

  return {
    backlog,
    async check(p) {
      const n = await backlog(p);
      if (n > opts.maxBacklog) {
        throw new TributaryError("OVERLOADED", "too many commands waiting; retry shortly", {
          retryAfter: opts.retryAfterSeconds ?? 2,
          details: { partition: p },
        });
      }
    },
  };
}
