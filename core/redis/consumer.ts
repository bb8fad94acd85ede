import type { BatchHandler, ConsumerCounters, StreamMessage } from "../consumer.js";
import { errorMessage, isTributaryError } from "../errors.js";
import { keys } from "../keys.js";
import { createLogger, type Logger } from "../logger.js";
import { backoffMs, reclaimAfterMs } from "./backoff.js";
import { isCluster, type RedisClient } from "./connection.js";
import { moveToDeadLetters } from "./dead-letters.js";
import { LuaScript } from "./lua-script.js";

const trimAckedScript = LuaScript.file("trim-acked-1.lua");

/**
 * The consumer-group runtime (issue 2 item 4, DESIGN I4/I5), shaped like centrifugo's redisqueue:
 * it reads, acknowledges, retries and dead-letters; the handler only does its effect.
 *
 * One loop per partition. Each loop reads its partition's stream and this group's redrive stream
 * (same `{pN}` slot, so one XREADGROUP covers both, on a single Redis and on Cluster alike) with a
 * blocking read on a connection of its own, hands each stream's batch to the handler, acknowledges
 * what succeeded, and between reads reclaims pending entries that are due for a retry. Why per
 * partition and blocking: see docs/consumer.md.
 */
export interface ConsumerOptions {
  /** From core/redis/connection.ts (single or Cluster). Used for acks, claims and scripts. */
  redis: RedisClient;
  /** e.g. "actors", "projector", "archiver". */
  group: string;
  /** Unique per process, e.g. `${hostname}-${pid}`: pending entries are owned by this name. */
  consumer: string;
  /** Partitions to read, re-evaluated every loop so ownership (leases) can change at run time. */
  partitions: () => number[];
  /** The stream of a partition, e.g. keys.cmd or keys.log. Must carry the partition's `{pN}` tag. */
  streamOf: (partition: number) => string;
  handler: BatchHandler;
  /** Deliveries before an entry is dead-lettered (config MAX_DELIVERIES). */
  maxDeliveries: number;
  /** Entries per read and per handler call. Larger batches amortise round trips, smaller ones bound the work redone after a crash. Default 256. */
  batchSize?: number;
  /** How long an idle read blocks. Bounds how late `stop()` and a partition hand-over take effect. Default 500. */
  blockMs?: number;
  /**
   * Visibility timeout: another consumer's pending entry idle for longer than this is taken over
   * (its owner is presumed dead). Too short steals work still in flight elsewhere (harmless for
   * idempotent effects, but wasted); too long delays recovery after a crash. Default 30 s.
   */
  claimIdleMs?: number;
  /** Backoff of a failed entry: retryBaseMs × 2^(deliveries−1), capped at retryMaxMs. Defaults 1 s, 60 s. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How often a partition loop looks for its own failed entries due for a retry, while it has some. Default clamp(retryBaseMs/2, 20, 1000). */
  reclaimIntervalMs?: number;
  /**
   * How often a partition loop with no failures of its own looks for entries of dead consumers
   * (and crash-poison entries). Each look is an XPENDING per stream, so this is the idle cost.
   * Default clamp(claimIdleMs/4, reclaimIntervalMs, 10 s).
   */
  scanIntervalMs?: number;
  /** How often `counters().lag` is refreshed (XINFO GROUPS per stream). Default 2 s. */
  lagIntervalMs?: number;
  /** Where a new group starts on the partition stream: "0" everything, "$" only new entries. Default "0". */
  startFrom?: "0" | "$";
  /**
   * Remove what every group of the stream has acknowledged, at the lag's cadence (a queue such as
   * the command streams: nothing else reads them). Never for a log that is the truth (the partition
   * logs: the archiver trims those once archived). Default false. See trim-acked-1.lua.
   */
  trimAcknowledged?: boolean;
  log?: Logger;
}

/** ConsumerCounters plus the errors the runtime met (handler failures and Redis errors). */
export interface StreamConsumerCounters extends ConsumerCounters {
  errors: number;
}

interface Pending {
  id: string;
  owner: string;
  idle: number;
  deliveries: number;
}

type RawEntry = [Buffer, Buffer[] | null];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class StreamConsumer {
  private readonly o: Required<Omit<ConsumerOptions, "log">> & { log: Logger };
  private running = false;
  private aborted = false;
  private supervisor: Promise<void> | undefined;
  private readonly loops = new Map<number, Promise<void>>();
  private readonly readers = new Set<RedisClient>();
  private readonly lagByPartition = new Map<number, number>();
  /** Last error per pending entry we failed ourselves, so its dead letter carries the real reason. */
  private readonly lastError = new Map<string, string>();
  /** Per partition: until when failed entries of ours may come due, so retries are looked for often. */
  private readonly hotUntil = new Map<number, number>();
  private readonly c: StreamConsumerCounters = { processed: 0, retried: 0, deadLettered: 0, lag: 0, errors: 0 };

  constructor(o: ConsumerOptions) {
    if (!Number.isInteger(o.maxDeliveries) || o.maxDeliveries < 1) throw new RangeError("maxDeliveries must be an integer ≥ 1");
    const retryBaseMs = o.retryBaseMs ?? 1000;
    const reclaimIntervalMs = o.reclaimIntervalMs ?? Math.min(1000, Math.max(20, Math.floor(retryBaseMs / 2)));
    this.o = {
      redis: o.redis,
      group: o.group,
      consumer: o.consumer,
      partitions: o.partitions,
      streamOf: o.streamOf,
      handler: o.handler,
      maxDeliveries: o.maxDeliveries,
      batchSize: o.batchSize ?? 256,
      blockMs: o.blockMs ?? 500,
      claimIdleMs: o.claimIdleMs ?? 30_000,
      retryBaseMs,
      retryMaxMs: o.retryMaxMs ?? 60_000,
      reclaimIntervalMs,
      scanIntervalMs: o.scanIntervalMs ?? Math.min(10_000, Math.max(reclaimIntervalMs, Math.floor((o.claimIdleMs ?? 30_000) / 4))),
      lagIntervalMs: o.lagIntervalMs ?? 2000,
      startFrom: o.startFrom ?? "0",
      trimAcknowledged: o.trimAcknowledged ?? false,
      log: (o.log ?? createLogger("silent")).child({ group: o.group, consumer: o.consumer }),
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.supervisor = this.supervise();
  }

  /** Graceful: stop reading, let in-flight batches finish and be acknowledged, then return. */
  async stop(): Promise<void> {
    this.running = false;
    // After abort() a loop may wait forever on a handler that never settles; it acknowledges nothing anyway.
    if (this.aborted) return;
    await this.supervisor;
    await Promise.all(this.loops.values());
  }

  /**
   * Simulates a crash (tests, chaos): connections close at once and nothing in flight is
   * acknowledged or dead-lettered; its pending entries wait for another consumer's reclaim.
   */
  abort(): void {
    this.aborted = true;
    this.running = false;
    for (const r of this.readers) r.disconnect();
    this.readers.clear();
  }

  counters(): StreamConsumerCounters {
    let lag = 0;
    for (const v of this.lagByPartition.values()) lag += v;
    return { ...this.c, lag };
  }

  /** Starts a loop for every partition that becomes ours; loops end themselves when it is not. */
  private async supervise(): Promise<void> {
    const tick = Math.min(this.o.blockMs, 250);
    while (this.running) {
      let wanted: number[] = [];
      try {
        wanted = this.o.partitions();
      } catch (e) {
        this.fail(e, "partitions() threw");
      }
      for (const p of wanted) {
        if (this.loops.has(p)) continue;
        const loop = this.runPartition(p).finally(() => this.loops.delete(p));
        this.loops.set(p, loop);
      }
      await sleep(tick);
    }
  }

  private owns(p: number): boolean {
    try {
      return this.o.partitions().includes(p);
    } catch {
      return false;
    }
  }

  private async runPartition(p: number): Promise<void> {
    const stream = this.o.streamOf(p);
    const redrive = keys.redrive(p, this.o.group);
    const reader = readerFor(this.o.redis, this.o.blockMs);
    reader.on("error", (e: unknown) => this.o.log.debug({ err: errorMessage(e), partition: p }, "reader connection error"));
    this.readers.add(reader);
    let groupsReady = false;
    let nextReclaim = 0;
    let nextLag = 0;
    let nextCleanup = Date.now() + this.forgetAfterMs();
    let failures = 0;
    try {
      while (this.running && this.owns(p)) {
        try {
          if (!groupsReady) {
            await this.ensureGroup(stream, this.o.startFrom);
            await this.ensureGroup(redrive, "0");
            groupsReady = true;
          }
          if (Date.now() >= nextReclaim) {
            await this.reclaim(p, stream);
            await this.reclaim(p, redrive);
            if (Date.now() >= nextCleanup) {
              await this.forgetIdleConsumers([stream, redrive]);
              nextCleanup = Date.now() + this.forgetAfterMs();
            }
            const hot = (this.hotUntil.get(p) ?? 0) > Date.now();
            nextReclaim = Date.now() + (hot ? this.o.reclaimIntervalMs : this.o.scanIntervalMs);
          }
          if (Date.now() >= nextLag) {
            await this.updateLag(p, [stream, redrive]);
            if (this.o.trimAcknowledged) await this.trimAcknowledged([stream, redrive]);
            nextLag = Date.now() + this.o.lagIntervalMs;
          }
          const block = Math.max(1, Math.min(this.o.blockMs, nextReclaim - Date.now()));
          // Typed *Buffer methods, not callBuffer: payloads are binary, and ioredis 6.0.0 drops
          // callBuffer's command name on clients with enableAutoPipelining.
          const reply = (await reader.xreadgroupBuffer(
            "GROUP",
            this.o.group,
            this.o.consumer,
            "COUNT",
            this.o.batchSize,
            "BLOCK",
            block,
            "STREAMS",
            stream,
            redrive,
            ">",
            ">",
          )) as unknown;
          if (this.aborted) return;
          for (const [name, entries] of streamReadReply(reply)) {
            const key = matchKey(name.toString(), [stream, redrive]);
            const batch = entries.map(([id, fields]) => toMessage(key, id, fields, 1));
            if (batch.length > 0) await this.handle(p, batch);
          }
          failures = 0;
        } catch (e) {
          if (this.aborted) return;
          if (e instanceof Error && e.message.includes("NOGROUP")) groupsReady = false; // stream deleted or trimmed away: recreate
          failures++;
          this.fail(e, "partition loop error", { partition: p });
          await sleep(backoffMs(failures, { baseMs: 50, maxMs: this.o.retryMaxMs }));
        }
      }
    } finally {
      this.readers.delete(reader);
      if (!this.aborted) await reader.quit().catch(() => reader.disconnect());
      this.lagByPartition.delete(p);
      this.hotUntil.delete(p);
    }
  }

  private async ensureGroup(stream: string, from: "0" | "$"): Promise<void> {
    try {
      await this.o.redis.call("XGROUP", "CREATE", stream, this.o.group, from, "MKSTREAM");
    } catch (e) {
      if (!(e instanceof Error && e.message.startsWith("BUSYGROUP"))) throw e;
    }
  }

  /**
   * Runs the handler on one stream's batch and settles every message: acknowledged, left pending
   * for a retry, or dead-lettered. A batch that throws is retried message by message so only the
   * poison ones stay pending.
   */
  private async handle(p: number, batch: StreamMessage[]): Promise<void> {
    let failed: Map<string, unknown>;
    try {
      const r = await this.o.handler(batch);
      failed = r instanceof Map ? r : new Map();
    } catch (e) {
      if (this.aborted) return;
      failed = new Map();
      if (batch.length === 1) {
        failed.set(batch[0]!.id, e);
      } else {
        this.o.log.debug({ err: errorMessage(e), size: batch.length }, "batch failed, retrying one by one");
        for (const m of batch) {
          try {
            const r = await this.o.handler([m]);
            const err = r instanceof Map ? r.get(m.id) : undefined;
            if (r instanceof Map && r.has(m.id)) failed.set(m.id, err);
          } catch (e2) {
            failed.set(m.id, e2);
          }
          if (this.aborted) return;
        }
      }
    }
    if (this.aborted) return;
    const stream = batch[0]!.stream;
    const ok = batch.filter((m) => !failed.has(m.id)).map((m) => m.id);
    if (ok.length > 0) {
      await this.o.redis.call("XACK", stream, this.o.group, ...ok);
      this.c.processed += ok.length;
      for (const id of ok) this.lastError.delete(id);
    }
    for (const m of batch) {
      if (!failed.has(m.id)) continue;
      const err = failed.get(m.id);
      const permanent = isTributaryError(err) && err.permanent;
      const reason = errorMessage(err);
      this.c.errors++;
      this.o.log.warn({ partition: p, stream, id: m.id, deliveries: m.deliveries, permanent, err: reason }, "message failed");
      if (permanent || m.deliveries >= this.o.maxDeliveries) {
        await this.deadLetter(p, stream, m.id, this.o.consumer, permanent ? `permanent: ${reason}` : reason, m.deliveries);
      } else {
        this.rememberFailure(m.id, reason);
        // Look for it again soon after its backoff; once nothing of ours is failing, fall back to the slow scan.
        const due = Date.now() + backoffMs(m.deliveries, { baseMs: this.o.retryBaseMs, maxMs: this.o.retryMaxMs }) + 2 * this.o.reclaimIntervalMs;
        this.hotUntil.set(p, Math.max(this.hotUntil.get(p) ?? 0, due));
      }
    }
  }

  /** Bounded: an entry another consumer took over and settled never comes back to clear its line. */
  private rememberFailure(id: string, reason: string): void {
    this.lastError.delete(id);
    this.lastError.set(id, reason);
    if (this.lastError.size > 10_000) {
      const oldest = this.lastError.keys().next();
      if (!oldest.done) this.lastError.delete(oldest.value);
    }
  }

  private async deadLetter(p: number, stream: string, id: string, owner: string, error: string, deliveries: number): Promise<void> {
    const dlId = await moveToDeadLetters(this.o.redis, { partition: p, stream, group: this.o.group, id, owner, error, deliveries });
    this.lastError.delete(id);
    if (dlId !== null) {
      this.c.deadLettered++;
      this.o.log.error({ partition: p, stream, id, deliveries, deadLetter: `${p}/${dlId}`, err: error }, "message dead-lettered");
    }
  }

  /**
   * Retries and take-overs. XPENDING lists the group's pending entries with owner, idle time and
   * delivery count; each is due after its own backoff (by delivery count), or after claimIdleMs if
   * another consumer owns it. XAUTOCLAIM has one idle threshold for all entries, so it cannot back
   * off per delivery count; XCLAIM with the entry's own threshold keeps the take-over atomic when
   * two consumers race for it.
   */
  private async reclaim(p: number, stream: string): Promise<void> {
    const minIdle = Math.min(this.o.retryBaseMs, this.o.claimIdleMs);
    const bo = { baseMs: this.o.retryBaseMs, maxMs: this.o.retryMaxMs, claimIdleMs: this.o.claimIdleMs };
    const due: Pending[] = [];
    // Page through the pending list (a few pages at most per tick) so entries still backing off at
    // its head do not hide due ones behind them; stop once a batch worth is due.
    let start = "-";
    for (let page = 0; page < 8 && due.length < this.o.batchSize; page++) {
      const rows = (await this.o.redis.call("XPENDING", stream, this.o.group, "IDLE", minIdle, start, "+", this.o.batchSize)) as Array<
        [string, string, number, number]
      >;
      for (const [id, owner, idle, deliveries] of rows) {
        const own = owner === this.o.consumer;
        if (idle >= reclaimAfterMs(Number(deliveries), own, bo)) due.push({ id, owner, idle: Number(idle), deliveries: Number(deliveries) });
      }
      const last = rows[rows.length - 1];
      if (rows.length < this.o.batchSize || !last) break;
      start = `(${last[0]}`;
    }
    if (due.length === 0) return;
    due.splice(this.o.batchSize);
    const retry: Pending[] = [];
    for (const d of due) {
      if (d.deliveries >= this.o.maxDeliveries) {
        // Delivered maxDeliveries times without an ack: the handler failed each time, or crashed its process.
        const last = this.lastError.get(d.id);
        const reason = last ?? `not acknowledged after ${d.deliveries} deliveries (last consumer ${d.owner})`;
        await this.deadLetter(p, stream, d.id, d.owner, reason, d.deliveries);
      } else {
        retry.push(d);
      }
    }
    if (retry.length === 0) return;
    // XCLAIM … JUSTID RETRYCOUNT n+1 then XRANGE, rather than a plain XCLAIM: ioredis has no typed
    // Buffer variant of XCLAIM (payloads are binary), and JUSTID alone would not count the delivery.
    const claimed = await Promise.all(
      retry.map(async (d) => {
        const threshold = reclaimAfterMs(d.deliveries, d.owner === this.o.consumer, bo);
        const ids = (await this.o.redis.call(
          "XCLAIM",
          stream,
          this.o.group,
          this.o.consumer,
          threshold,
          d.id,
          "RETRYCOUNT",
          d.deliveries + 1,
          "JUSTID",
        )) as string[];
        if (ids.length === 0) return { d, entry: null }; // claimed by another consumer meanwhile
        const rows = (await this.o.redis.xrangeBuffer(stream, d.id, d.id)) as RawEntry[];
        return { d, entry: rows[0] ?? ([Buffer.from(d.id), null] as RawEntry) };
      }),
    );
    const batch: StreamMessage[] = [];
    for (const { d, entry } of claimed) {
      if (entry === null) continue;
      if (entry[1] === null) {
        // The entry was trimmed or deleted while pending: nothing left to process.
        await this.o.redis.call("XACK", stream, this.o.group, d.id);
        continue;
      }
      batch.push(toMessage(stream, entry[0], entry[1], d.deliveries + 1));
    }
    if (batch.length === 0) return;
    this.c.retried += batch.length;
    await this.handle(p, batch);
  }

  /** Consumer names include the pid, so every restart leaves one behind; forget those long gone. */
  private forgetAfterMs(): number {
    return Math.max(60_000, this.o.claimIdleMs * 10);
  }

  /**
   * Deletes other consumers of the group that own no pending entries and have been idle for
   * forgetAfterMs. Safe: with nothing pending nothing is lost, and a consumer that was merely quiet
   * is re-created by its next read.
   */
  private async forgetIdleConsumers(streams: string[]): Promise<void> {
    for (const s of streams) {
      const rows = (await this.o.redis.call("XINFO", "CONSUMERS", s, this.o.group)) as unknown[][];
      for (const row of rows) {
        const info = pairs(row);
        const name = String(info.get("name"));
        if (name === this.o.consumer || Number(info.get("pending")) !== 0) continue;
        if (Number(info.get("idle")) < this.forgetAfterMs()) continue;
        await this.o.redis.call("XGROUP", "DELCONSUMER", s, this.o.group, name);
        this.o.log.info({ stream: s, forgotten: name }, "removed an idle consumer with nothing pending");
      }
    }
  }

  private async trimAcknowledged(streams: string[]): Promise<void> {
    for (const s of streams) {
      const removed = Number(await trimAckedScript.run(this.o.redis, [s], []));
      if (removed > 0) this.o.log.debug({ stream: s, removed }, "trimmed acknowledged entries");
    }
  }

  private async updateLag(p: number, streams: string[]): Promise<void> {
    let lag = 0;
    for (const s of streams) {
      const groups = (await this.o.redis.call("XINFO", "GROUPS", s)) as unknown[][];
      for (const g of groups) {
        const info = pairs(g);
        if (info.get("name") === this.o.group) lag += Number(info.get("lag") ?? 0) || 0;
      }
    }
    this.lagByPartition.set(p, lag);
  }

  private fail(e: unknown, msg: string, ctx: Record<string, unknown> = {}): void {
    this.c.errors++;
    this.o.log.error({ ...ctx, err: errorMessage(e) }, msg);
  }
}

/**
 * The partition's blocking-read connection. `blockingTimeout` makes ioredis fail a read that has
 * not answered within BLOCK + a grace period: a connection that died silently (no RST, e.g. a
 * network partition) would otherwise hang its partition — and stop() — for good.
 */
function readerFor(client: RedisClient, blockMs: number): RedisClient {
  const blockingTimeout = blockMs + 5_000;
  if (isCluster(client)) return client.duplicate([], { redisOptions: { blockingTimeout } });
  return client.duplicate({ blockingTimeout });
}

function toMessage(stream: string, id: Buffer, raw: Buffer[] | null, deliveries: number): StreamMessage {
  const fields: Record<string, Buffer> = {};
  if (raw) for (let i = 0; i + 1 < raw.length; i += 2) fields[raw[i]!.toString()] = raw[i + 1]!;
  return { stream, id: id.toString(), fields, deliveries };
}

/**
 * XREADGROUP's reply as [stream, entries] pairs. Through the generic `call`, ioredis hands a RESP3
 * connection's map reply over flat ([k, v, k, v]) instead of the legacy nested shape the typed
 * method gives; accept both rather than depend on the connection's protocol.
 */
function streamReadReply(reply: unknown): Array<[Buffer, RawEntry[]]> {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  if (Array.isArray(reply[0])) return reply as Array<[Buffer, RawEntry[]]>;
  const out: Array<[Buffer, RawEntry[]]> = [];
  for (let i = 0; i + 1 < reply.length; i += 2) out.push([reply[i] as Buffer, reply[i + 1] as RawEntry[]]);
  return out;
}

/** Reply stream names carry any client key prefix; map them back to the names we asked for. */
function matchKey(name: string, asked: string[]): string {
  let best: string | undefined;
  for (const k of asked) if ((name === k || name.endsWith(k)) && (best === undefined || k.length > best.length)) best = k;
  return best ?? name;
}

function pairs(flat: unknown[]): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(String(flat[i]), flat[i + 1]);
  return m;
}
