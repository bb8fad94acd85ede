import { compareOffsets } from "../core/envelope.js";
import { keys } from "../core/keys.js";
import type { RedisClient } from "../core/redis/connection.js";
import { liveCheckpoints } from "./checkpoints.js";
import type { Db } from "./db.js";

/** `projections status`: how far the read models are behind each partition log. */
export interface PartitionStatus {
  partition: number;
  /** Last log entry applied ("0-0" = none). */
  checkpoint: string;
  applied: number;
  /** Entries ever added to the log (XINFO STREAM entries-added; trimming does not lower it). */
  logEntries: number;
  /** Entries not yet applied. */
  lagEvents: number;
  /** Age of the oldest entry not yet applied, in seconds (0 when caught up). */
  lagSeconds: number;
  /**
   * Entries above the checkpoint were trimmed from Redis before they were projected (XINFO STREAM
   * max-deleted-entry-id > checkpoint): the read models miss them until a rebuild that reads the
   * archive. Should never happen; reported loudly rather than silently skipped.
   */
  trimmedUnapplied: boolean;
}

function field(reply: unknown[], name: string): unknown {
  for (let i = 0; i + 1 < reply.length; i += 2) if (String(reply[i]) === name) return reply[i + 1];
  return undefined;
}

/**
 * Were log entries above `checkpoint` removed before being applied? XDEL shows in
 * max-deleted-entry-id; trimming (XTRIM MINID/MAXLEN, which removes from the head and does not
 * update that field) shows when the first entry left is above the checkpoint and fewer entries
 * remain than are still unapplied.
 */
function trimmedPast(info: unknown[], checkpoint: string, applied: number): boolean {
  const deleted = String(field(info, "max-deleted-entry-id") ?? "0-0");
  if (deleted !== "0-0" && compareOffsets(deleted, checkpoint) > 0) return true;
  const firstEntry = field(info, "first-entry");
  const first = String(field(info, "recorded-first-entry-id") ?? (Array.isArray(firstEntry) ? firstEntry[0] : "0-0"));
  const added = Number(field(info, "entries-added") ?? 0);
  const length = Number(field(info, "length") ?? 0);
  if (length === 0) return added - applied > 0;
  return first !== "0-0" && compareOffsets(first, checkpoint) > 0 && added - applied > length;
}

/** True when log entries above the checkpoint were trimmed or deleted from `{p}:log` (see PartitionStatus). */
export async function trimmedPastCheckpoint(redis: RedisClient, partition: number, checkpoint: string, applied: number): Promise<boolean> {
  try {
    return trimmedPast((await redis.call("XINFO", "STREAM", keys.log(partition))) as unknown[], checkpoint, applied);
  } catch (e) {
    if (/no such key/i.test(e instanceof Error ? e.message : String(e))) return false;
    throw e;
  }
}

export async function projectionStatus(db: Db, redis: RedisClient, partitions: number, now = Date.now()): Promise<PartitionStatus[]> {
  const cps = await liveCheckpoints(db);
  const out: PartitionStatus[] = [];
  for (let p = 0; p < partitions; p++) {
    const cp = cps.get(p) ?? { logId: "0-0", applied: 0 };
    let logEntries = 0;
    let trimmedUnapplied = false;
    try {
      const info = (await redis.call("XINFO", "STREAM", keys.log(p))) as unknown[];
      logEntries = Number(field(info, "entries-added") ?? field(info, "length") ?? 0);
      trimmedUnapplied = trimmedPast(info, cp.logId, cp.applied);
    } catch (e) {
      if (!/no such key/i.test(e instanceof Error ? e.message : String(e))) throw e;
    }
    const lagEvents = Math.max(0, logEntries - cp.applied);
    let lagSeconds = 0;
    if (lagEvents > 0) {
      const start = cp.logId === "0-0" ? "-" : `(${cp.logId}`;
      const next = await redis.xrange(keys.log(p), start, "+", "COUNT", 1);
      const id = next[0]?.[0];
      if (id) lagSeconds = Math.max(0, (now - Number(id.split("-")[0])) / 1000);
    }
    out.push({ partition: p, checkpoint: cp.logId, applied: cp.applied, logEntries, lagEvents, lagSeconds, trimmedUnapplied });
  }
  return out;
}
