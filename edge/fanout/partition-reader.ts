import { tag } from "../../core/keys.js";
import { errorMessage } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { Cluster } from "ioredis";
import type { RedisClient } from "../../core/redis/connection.js";
import type { RawEntry } from "./entries.js";

/**
 * One blocking XREAD loop per partition, over every followed stream of that partition. All keys of
 * a partition share the `{pN}` hash tag, hence one slot, so one XREAD covers them on Redis Cluster
 * too. A blocking read occupies its connection, so each active partition has its own duplicate.
 *
 * When the followed set changes the running XREAD must be re-issued. Instead of CLIENT UNBLOCK
 * (which needs the blocked connection's id and the right cluster node) the loop also reads a tiny
 * per-node "wake" stream in the same slot; XADD to it returns the XREAD at once on both single Redis
 * and Cluster. The loop reads the wake stream from the last wake id it saw, so a wake-up written
 * before the XREAD reaches the server is not lost either.
 */
export interface FollowedStream {
  /** Logical key (without the client's keyPrefix). */
  readonly key: string;
  /** Last offset published: the next read starts after it. */
  readonly position: string;
  publishEntries(entries: RawEntry[]): void;
}

export interface PartitionReaderOptions {
  partition: number;
  redis: RedisClient;
  nodeId: string;
  blockMs: number;
  count: number;
  log: Logger | undefined;
}

/** Wake-up streams live only while their node runs; the TTL removes those of crashed nodes. */
const WAKE_TTL_MS = 3_600_000;

export class PartitionReader {
  readonly partition: number;
  private readonly streams = new Map<string, FollowedStream>();
  private readonly o: PartitionReaderOptions;
  private readonly wakeKey: string;
  private readonly prefix: string;
  private conn: RedisClient | undefined;
  private running: Promise<void> | undefined;
  private wakeSeen = "0-0";
  /** A wake-up is on its way for the read in flight: further changes before the next read need none. */
  private wakeSent = false;
  private stopped = false;
  private failures = 0;

  constructor(o: PartitionReaderOptions) {
    this.o = o;
    this.partition = o.partition;
    this.wakeKey = `${tag(o.partition)}:fanout:wake:${o.nodeId}`;
    // Replies name keys with the client's keyPrefix (tests use one); map them back.
    this.prefix = (o.redis.options as { keyPrefix?: string }).keyPrefix ?? "";
  }

  get size(): number {
    return this.streams.size;
  }

  add(s: FollowedStream): void {
    this.streams.set(this.prefix + s.key, s);
    this.ensureRunning();
    this.wake();
  }

  remove(s: FollowedStream): void {
    const k = this.prefix + s.key;
    if (this.streams.get(k) === s) this.streams.delete(k);
    // Stop reading it soon; entries still in flight for it are ignored (not in the map).
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.streams.clear();
    // Closing the connection rejects the blocked XREAD, which ends the loop.
    this.conn?.disconnect();
    await this.running;
    this.conn = undefined;
    // Best effort (the TTL removes it anyway): never let a Redis outage hold up shutdown.
    await Promise.race([this.o.redis.del(this.wakeKey).catch(() => undefined), sleep(500)]);
  }

  private ensureRunning(): void {
    if (this.running || this.stopped) return;
    let failed = false;
    this.running = this.loop()
      .catch((e: unknown) => {
        failed = true;
        this.o.log?.error({ partition: this.partition, err: errorMessage(e) }, "fan-out read loop failed; restarting");
      })
      .finally(() => {
        this.running = undefined;
        // A stream added while the loop was winding down needs a new loop; after a failure, not in a tight spin.
        if (this.streams.size === 0 || this.stopped) return;
        if (failed) setTimeout(() => this.ensureRunning(), 200).unref();
        else this.ensureRunning();
      });
  }

  private wake(): void {
    if (!this.running || this.stopped || this.wakeSent) return;
    this.wakeSent = true;
    // Fire-and-forget: a lost wake-up only costs up to blockMs of latency, never an event.
    this.o.redis
      .multi()
      .xadd(this.wakeKey, "MAXLEN", "1", "*", "w", "1")
      .pexpire(this.wakeKey, WAKE_TTL_MS)
      .exec()
      .catch((e: unknown) => this.o.log?.warn({ partition: this.partition, err: errorMessage(e) }, "fan-out wake-up failed"));
  }

  private async loop(): Promise<void> {
    while (!this.stopped && this.streams.size > 0) {
      const conn = (this.conn ??= blockingConnection(this.o.redis, `tributary-fanout:${this.o.nodeId}:p${this.partition}`));
      const keys: string[] = [this.wakeKey];
      const ids: string[] = [this.wakeSeen];
      for (const s of this.streams.values()) {
        keys.push(s.key);
        ids.push(s.position);
      }
      let reply: Array<[Buffer, RawEntry[]]> | null;
      // This read covers every stream followed so far; only later changes need a new wake-up.
      this.wakeSent = false;
      try {
        reply = (await conn.xreadBuffer("COUNT", this.o.count, "BLOCK", this.o.blockMs, "STREAMS", ...keys, ...ids)) as Array<
          [Buffer, RawEntry[]]
        > | null;
        this.failures = 0;
      } catch (e) {
        if (this.stopped) return;
        this.failures++;
        this.o.log?.warn({ partition: this.partition, err: errorMessage(e), failures: this.failures }, "fan-out read failed; retrying");
        // Positions are kept, so the retry resumes exactly where it stopped.
        await sleep(Math.min(2000, 50 * 2 ** Math.min(this.failures, 6)));
        continue;
      }
      if (reply === null) continue;
      for (const [keyBuf, entries] of reply) {
        const key = keyBuf.toString();
        if (key === this.prefix + this.wakeKey) {
          const last = entries[entries.length - 1];
          if (last) this.wakeSeen = last[0].toString("latin1");
          continue;
        }
        this.streams.get(key)?.publishEntries(entries);
      }
    }
  }
}

/** A duplicate for blocking reads, named so operators can tell fan-out readers apart in CLIENT LIST. */
function blockingConnection(client: RedisClient, connectionName: string): RedisClient {
  if (client instanceof Cluster) {
    // Cluster.duplicate merges options shallowly: keep the node options, change only the name.
    return client.duplicate(undefined, { ...client.options, redisOptions: { ...client.options.redisOptions, connectionName } });
  }
  return client.duplicate({ connectionName });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
