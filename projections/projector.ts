import type { StreamMessage } from "../core/consumer.js";
import { compareOffsets } from "../core/envelope.js";
import { errorMessage } from "../core/errors.js";
import { keys } from "../core/keys.js";
import { createLogger, type Logger } from "../core/logger.js";
import type { RedisClient } from "../core/redis/connection.js";
import { StreamConsumer } from "../core/redis/consumer.js";
import { applyBatch, StaleRangeError } from "./apply.js";
import { liveCheckpoints } from "./checkpoints.js";
import type { Db } from "./db.js";
import { redisLogSource, type LogRecord, type LogSource } from "./log-source.js";
import { trimmedPastCheckpoint } from "./status.js";

/**
 * The projector process (issue 4 item 4).
 *
 * Why the consumer group's deliveries are triggers and not the data: exactly-once by checkpoint
 * needs every partition's entries applied in log order with no hole, but a consumer group hands out
 * retries (XAUTOCLAIM) after newer entries and, with several projector processes, splits one
 * partition's entries between them. So a delivered batch only says "partition p has work up to
 * entry X": the projector then reads the log itself from the partition's checkpoint up to X
 * (XRANGE, contiguous by construction) and applies that range in one transaction with the new
 * checkpoint (apply.ts). A redelivered or duplicated trigger finds nothing above the checkpoint and
 * is a no-op; two projectors on one partition serialise on the checkpoint row lock. A periodic
 * catch-up pass covers entries whose trigger was dead-lettered (e.g. Postgres down for longer than
 * MAX_DELIVERIES retries), so nothing waits for the next event to be projected.
 */
export interface ProjectorOptions {
  db: Db;
  redis: RedisClient;
  /** Partitions this process projects; re-evaluated continuously (leases may change it). */
  partitions: () => number[];
  /** Unique per process, e.g. `${hostname}-${pid}`. */
  consumer: string;
  maxDeliveries: number;
  /** Where entries are read from (the archive seam); default: the Redis partition logs. */
  source?: LogSource;
  /** Log entries per transaction: larger amortises commits, smaller bounds redone work after a crash. Default 2000. */
  maxBatch?: number;
  /** Catch-up pass interval. Default 2000 ms. */
  catchUpMs?: number;
  /** Trigger read size for the consumer group. Default 512. */
  triggerBatch?: number;
  blockMs?: number;
  claimIdleMs?: number;
  retryBaseMs?: number;
  log?: Logger;
}

export interface ProjectorCounters {
  applied: number;
  skipped: number;
  rejected: number;
  batches: number;
  /** Catch-up passes that found log entries trimmed above the checkpoint (see status.ts trimmedUnapplied). */
  gaps: number;
  /** Batches applied straight from delivered entries (the fast path, no re-read). */
  delivered: number;
  errors: number;
}

const PARTITION_TAG = /\{p(\d+)\}/;

/**
 * Apply partition `p`'s log from its checkpoint up to `to` (inclusive; default: the current end), in
 * transactions of at most `maxBatch` entries. Returns what was applied.
 */
export async function projectPartition(
  db: Db,
  source: LogSource,
  partition: number,
  opts: { to?: string; maxBatch?: number } = {},
  counters?: ProjectorCounters,
): Promise<number> {
  const limit = opts.maxBatch ?? 2000;
  const to = opts.to;
  const read = (after: string) => source.range(partition, after, { limit, ...(to === undefined ? {} : { to }) });
  let total = 0;
  restart: for (;;) {
    let cp = (await liveCheckpoints(db)).get(partition)?.logId ?? "0-0";
    if (to !== undefined && compareOffsets(cp, to) >= 0) return total;
    // The next range is read from Redis while the current one is written to Postgres.
    let next: Promise<LogRecord[]> | undefined = read(cp);
    while (next) {
      const entries: LogRecord[] = await next;
      const last = entries[entries.length - 1];
      if (!last) return total;
      next = entries.length < limit ? undefined : read(last.id);
      try {
        const r = await applyBatch(db, entries, { readFrom: new Map([[partition, cp]]) });
        total += r.applied;
        if (counters) {
          counters.applied += r.applied;
          counters.skipped += r.skipped;
          counters.rejected += r.rejected;
          counters.batches += 1;
        }
      } catch (e) {
        // Leave no prefetch unobserved, then start over from the checkpoint as it now stands.
        await next?.catch(() => undefined);
        if (e instanceof StaleRangeError) continue restart;
        throw e;
      }
      cp = last.id;
    }
    return total;
  }
}

export class Projector {
  private readonly consumer: StreamConsumer;
  private readonly source: LogSource;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private catchingUp: Promise<void> | undefined;
  private running = false;
  /** Per-partition chain: a trigger and the catch-up pass never work on one partition at once (they would only redo each other's reads). */
  private readonly busy = new Map<number, Promise<unknown>>();
  readonly counters: ProjectorCounters = { applied: 0, skipped: 0, rejected: 0, batches: 0, gaps: 0, delivered: 0, errors: 0 };

  constructor(private readonly o: ProjectorOptions) {
    this.source = o.source ?? redisLogSource(o.redis);
    this.log = o.log ?? createLogger("silent");
    this.consumer = new StreamConsumer({
      redis: o.redis,
      group: "projector",
      consumer: o.consumer,
      partitions: o.partitions,
      streamOf: (p) => keys.log(p),
      handler: (batch) => this.onTrigger(batch),
      maxDeliveries: o.maxDeliveries,
      batchSize: o.triggerBatch ?? 512,
      // "0", not "$": a new group then still "needs" the whole history, so the archiver (which trims
      // only what every group has acknowledged) cannot trim entries this projector never applied.
      // Entries at or below the checkpoint cost one checkpoint read per trigger batch.
      startFrom: "0",
      ...(o.blockMs === undefined ? {} : { blockMs: o.blockMs }),
      ...(o.claimIdleMs === undefined ? {} : { claimIdleMs: o.claimIdleMs }),
      ...(o.retryBaseMs === undefined ? {} : { retryBaseMs: o.retryBaseMs }),
      log: this.log,
    });
  }

  /** Catch up every owned partition, then follow the logs. */
  async start(): Promise<void> {
    this.running = true;
    await this.catchUp();
    this.consumer.start();
    this.timer = setInterval(() => {
      if (!this.catchingUp) this.catchingUp = this.catchUp().finally(() => (this.catchingUp = undefined));
    }, this.o.catchUpMs ?? 2000);
  }

  /** Graceful: stop triggers and the catch-up pass; in-flight batches commit (or roll back) first. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    await this.consumer.stop();
    await this.catchingUp;
  }

  private serial<T>(partition: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.busy.get(partition) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.busy.set(partition, settled);
    void settled.then(() => {
      if (this.busy.get(partition) === settled) this.busy.delete(partition);
    });
    return run;
  }

  private async catchUp(): Promise<void> {
    for (const p of this.o.partitions()) {
      if (!this.running) return;
      try {
        await this.serial(p, () => projectPartition(this.o.db, this.source, p, { maxBatch: this.o.maxBatch ?? 2000 }, this.counters));
        const cp = (await liveCheckpoints(this.o.db)).get(p) ?? { logId: "0-0", applied: 0 };
        if (await trimmedPastCheckpoint(this.o.redis, p, cp.logId, cp.applied)) {
          this.counters.gaps++;
          this.log.error({ partition: p, checkpoint: cp.logId }, "log entries above the checkpoint were trimmed before they were projected; run `projections rebuild` once the archive seam is wired");
        }
      } catch (e) {
        this.counters.errors++;
        this.log.warn({ partition: p, err: errorMessage(e) }, "catch-up failed; retrying on the next pass");
      }
    }
  }

  private async onTrigger(batch: StreamMessage[]): Promise<void> {
    const first = batch[0];
    if (!first) return;
    const m = PARTITION_TAG.exec(first.stream);
    if (!m) throw new Error(`stream ${first.stream} carries no partition tag`);
    const partition = Number(m[1]);
    await this.serial(partition, () => this.trigger(partition, batch));
  }

  private async trigger(partition: number, batch: StreamMessage[]): Promise<void> {
    const first = batch[0];
    if (!first) return;
    // A redriven trigger has an id of the redrive stream, not of the log: catch up to the end instead.
    const redriven = first.stream.includes(":redrive:");
    try {
      if (!redriven && batch.every((msg) => msg.deliveries === 1) && (await this.applyDelivered(partition, batch))) return;
      let to: string | undefined;
      if (!redriven) for (const msg of batch) if (to === undefined || compareOffsets(msg.id, to) > 0) to = msg.id;
      await projectPartition(this.o.db, this.source, partition, { ...(to === undefined ? {} : { to }), maxBatch: this.o.maxBatch ?? 2000 }, this.counters);
    } catch (e) {
      this.counters.errors++;
      throw e;
    }
  }

  /**
   * The steady-state fast path: use the delivered entries themselves instead of reading them back.
   * A first delivery batch is one XREADGROUP ">" reply (or one entry of it), i.e. consecutive log
   * entries. If it starts right after the checkpoint (or contains it), it is the contiguous range
   * apply.ts needs; proving that costs one XRANGE of a single entry instead of re-reading the batch.
   * Anything else (reclaimed entries, a gap) returns false and takes the XRANGE path.
   */
  private async applyDelivered(partition: number, batch: StreamMessage[]): Promise<boolean> {
    const first = batch[0];
    const last = batch[batch.length - 1];
    if (!first || !last) return true;
    const cp = (await liveCheckpoints(this.o.db)).get(partition)?.logId ?? "0-0";
    if (compareOffsets(last.id, cp) <= 0) return true;
    let start: number;
    const at = batch.findIndex((msg) => msg.id === cp);
    if (at >= 0) start = at + 1;
    else {
      if (compareOffsets(first.id, cp) <= 0) return false;
      const next = await this.source.range(partition, cp, { limit: 1 });
      if (next[0]?.id !== first.id) return false;
      start = 0;
    }
    const records: LogRecord[] = batch.slice(start).map((msg) => ({ partition, id: msg.id, fields: new Map(Object.entries(msg.fields)) }));
    try {
      const r = await applyBatch(this.o.db, records, { readFrom: new Map([[partition, cp]]) });
      this.counters.applied += r.applied;
      this.counters.skipped += r.skipped;
      this.counters.rejected += r.rejected;
      this.counters.batches += 1;
      this.counters.delivered += 1;
      return true;
    } catch (e) {
      if (e instanceof StaleRangeError) return false;
      throw e;
    }
  }
}
