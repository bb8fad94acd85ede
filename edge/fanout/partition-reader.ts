import { channel } from "node:diagnostics_channel";
import { compareOffsets } from "../../core/envelope.js";
import { tag } from "../../core/keys.js";
import { errorMessage } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { Cluster } from "ioredis";
import type { RedisClient } from "../../core/redis/connection.js";
import type { RawEntry } from "./entries.js";

/**
 * One blocking XREAD loop over every followed stream of a *read group*. On Redis Cluster a group is
 * one partition: its keys share the `{pN}` hash tag, hence one slot, which is as far as one XREAD
 * may reach there. On a single Redis nothing stops one XREAD from spanning every partition, so the
 * fan-out puts all of them in one group (`readLoops`, default 1): one command per round for the
 * whole node instead of one per partition — during pure fan-out the per-command cost of the Redis
 * client (encoding, reply parsing, promise) was the largest share of the edge's CPU (issue 5). A
 * blocking read occupies its connection, so each active group has its own duplicate.
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
  /** Read group: a partition on Cluster; on a single Redis, partition mod readLoops. Names the wake key. */
  group: number;
  redis: RedisClient;
  nodeId: string;
  blockMs: number;
  count: number;
  log: Logger | undefined;
  /** Send the next read before publishing a reply (see loop) [false]. */
  pipeline?: boolean;
}

/**
 * Timestamps of every XREAD round for diagnostics (issue 5's latency tail: append → XREAD return →
 * publish → client). Published only while something subscribes (`hasSubscribers`), so the read loop
 * pays one property read per round otherwise. Message: {@link ReadRound}. bench/fanout/trace.mjs
 * subscribes to it (and to the bench ceiling's own channel) when a run asks for a pipeline trace.
 */
export const READ_CHANNEL = "tributary:fanout:read";
const readChannel = channel(READ_CHANNEL);

export interface ReadRound {
  /** The edge node (Fanout nodeId) and read group the round belongs to. */
  nodeId: string;
  group: number;
  /** performance.now() when the XREAD was sent, when its reply reached JS, and when every entry of it was published. */
  issuedAt: number;
  repliedAt: number;
  publishedAt: number;
  /** Stream ids of the entries the round returned (wake-ups included), in reply order. */
  ids: string[];
}

/** Wake-up streams live only while their node runs; the TTL removes those of crashed nodes. */
const WAKE_TTL_MS = 3_600_000;

export class PartitionReader {
  readonly group: number;
  private readonly streams = new Map<string, FollowedStream>();
  /** XREAD's key list (wake key first), rebuilt only when the followed set changes. */
  private keys: string[] = [];
  private followed: FollowedStream[] = [];
  private keysStale = true;
  private readonly o: PartitionReaderOptions;
  private readonly wakeKey: string;
  private readonly prefix: string;
  /** The wake key as replies name it (prefix included). */
  private readonly fullWakeKey: string;
  private conn: RedisClient | undefined;
  private running: Promise<void> | undefined;
  private wakeSeen = "0-0";
  /** A read a finished loop left in flight (see loop). */
  private abandoned: Promise<void> | undefined;
  /** A wake-up is on its way for the read in flight: further changes before the next read need none. */
  private wakeSent = false;
  private stopped = false;
  private failures = 0;

  constructor(o: PartitionReaderOptions) {
    this.o = o;
    this.group = o.group;
    this.wakeKey = `${tag(o.group)}:fanout:wake:${o.nodeId}`;
    // Replies name keys with the client's keyPrefix (tests use one); map them back.
    this.prefix = (o.redis.options as { keyPrefix?: string }).keyPrefix ?? "";
    this.fullWakeKey = flat(this.prefix + this.wakeKey);
  }

  get size(): number {
    return this.streams.size;
  }

  add(s: FollowedStream): void {
    this.streams.set(this.prefix + s.key, s);
    this.keysStale = true;
    this.ensureRunning();
    this.wake();
  }

  remove(s: FollowedStream): void {
    const k = this.prefix + s.key;
    if (this.streams.get(k) === s) this.streams.delete(k);
    this.keysStale = true;
    // Stop reading it soon; entries still in flight for it are ignored (not in the map).
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.streams.clear();
    this.keysStale = true;
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
        this.o.log?.error({ group: this.group, err: errorMessage(e) }, "fan-out read loop failed; restarting");
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
      .catch((e: unknown) => this.o.log?.warn({ group: this.group, err: errorMessage(e) }, "fan-out wake-up failed"));
  }

  private async loop(): Promise<void> {
    // A read the previous loop left in flight: let it end first (its reply is dropped; nothing of it
    // was published, so the positions still point before it and the next read returns it again).
    if (this.abandoned) {
      await this.abandoned;
      this.abandoned = undefined;
    }
    let next: PendingRead | undefined;
    while (!this.stopped && this.streams.size > 0) {
      const read = next ?? this.issue(undefined);
      next = undefined;
      let reply: XreadReply | null;
      try {
        reply = await read.reply;
        this.failures = 0;
      } catch (e) {
        if (this.stopped) return;
        this.failures++;
        this.o.log?.warn({ group: this.group, err: errorMessage(e), failures: this.failures }, "fan-out read failed; retrying");
        // Positions are kept, so the retry resumes exactly where it stopped.
        await sleep(Math.min(2000, 50 * 2 ** Math.min(this.failures, 6)));
        continue;
      }
      if (reply === null) continue;
      const repliedAt = read.issuedAt > 0 ? performance.now() : 0;
      // Pipelined (opt-in): the next read goes out BEFORE this reply is published, starting after
      // this reply's last entries, so Redis serves it while we publish. Exact: this reply is
      // published right below, in this same synchronous step, so the next read starts where
      // publishing will leave each position; publishEntries never goes backwards. Off by default:
      // in the A/B of 2026-11-22 it gave smaller rounds (more XREADs, less SSE batching, more CPU
      // per delivery) and no measurable latency gain on the shared machine (docs/fanout.md).
      if (this.o.pipeline === true && !this.stopped && this.streams.size > 0) next = this.issue(reply);
      for (const [keyBuf, entries] of reply) {
        const key = keyBuf.toString();
        if (key === this.fullWakeKey) {
          const last = entries[entries.length - 1];
          if (last) this.wakeSeen = last[0].toString("latin1");
          continue;
        }
        this.streams.get(key)?.publishEntries(entries);
      }
      if (read.issuedAt > 0 && readChannel.hasSubscribers) {
        const ids = reply.flatMap(([, entries]) => entries.map((e) => e[0].toString("latin1")));
        readChannel.publish({ nodeId: this.o.nodeId, group: this.group, issuedAt: read.issuedAt, repliedAt, publishedAt: performance.now(), ids } satisfies ReadRound);
      }
    }
    if (next) this.abandoned = next.reply.then(noop, noop);
  }

  /**
   * Send one blocking XREAD over every followed stream (and the wake stream). Each stream starts
   * after its position — or, when `after` (the reply about to be published) holds entries of it,
   * after the last of those.
   */
  private issue(after: XreadReply | undefined): PendingRead {
    const conn = (this.conn ??= blockingConnection(this.o.redis, `tributary-fanout:${this.o.nodeId}:g${this.group}`));
    if (this.keysStale) {
      this.keysStale = false;
      this.followed = [...this.streams.values()];
      // Full key names (the blocking connection has no keyPrefix), built and flattened once per
      // change of the followed set: with a keyPrefix, ioredis would concatenate the prefix onto
      // every key of every round and write the resulting rope strings — in the CPU profile at 84k
      // deliveries/s that made each XREAD cost about twice what the bare loop's does.
      this.keys = [this.wakeKey, ...this.followed.map((s) => s.key)].map((k) => flat(this.prefix + k));
    }
    let lastOf: Map<string, string> | undefined;
    if (after) {
      lastOf = new Map();
      for (const [keyBuf, entries] of after) {
        const last = entries[entries.length - 1];
        if (!last) continue;
        const key = keyBuf.toString();
        const id = last[0].toString("latin1");
        if (key === this.fullWakeKey) this.wakeSeen = id;
        else lastOf.set(key, id);
      }
    }
    // Keys, then one id per key.
    const n = this.followed.length;
    const args: Array<string | number> = new Array(5 + 2 * (n + 1));
    args[0] = "COUNT";
    args[1] = this.o.count;
    args[2] = "BLOCK";
    args[3] = this.o.blockMs;
    args[4] = "STREAMS";
    for (let i = 0; i <= n; i++) args[5 + i] = this.keys[i] as string;
    args[6 + n] = this.wakeSeen;
    for (let i = 0; i < n; i++) {
      const s = this.followed[i] as FollowedStream;
      const last = lastOf?.get(this.prefix + s.key);
      args[7 + n + i] = last !== undefined && compareOffsets(last, s.position) > 0 ? last : s.position;
    }
    // This read covers every stream followed so far; only later changes need a new wake-up.
    this.wakeSent = false;
    const issuedAt = readChannel.hasSubscribers ? performance.now() : 0;
    const reply = (conn.xreadBuffer as (...a: Array<string | number>) => Promise<unknown>)(...args) as Promise<XreadReply | null>;
    // Awaited by the loop; until then (while the previous reply is published) a rejection must not
    // count as unhandled.
    reply.catch(noop);
    return { reply, issuedAt };
  }
}

type XreadReply = Array<[Buffer, RawEntry[]]>;
interface PendingRead {
  reply: Promise<XreadReply | null>;
  /** performance.now() when sent, 0 when nobody traces (see READ_CHANNEL). */
  issuedAt: number;
}
const noop = (): void => undefined;

/**
 * A duplicate for blocking reads, named so operators can tell fan-out readers apart in CLIENT LIST.
 * Without auto-pipelining: a blocking connection carries one command at a time, so batching buys
 * nothing, and ioredis would build a pipeline object for every XREAD (a measurable share of the
 * edge's CPU at high event rates).
 */
function blockingConnection(client: RedisClient, connectionName: string): RedisClient {
  // No keyPrefix either: the loop passes full key names (see issue), as replies name them anyway.
  if (client instanceof Cluster) {
    // Cluster.duplicate merges options shallowly: keep the node options, change only the name.
    return client.duplicate(undefined, {
      ...client.options,
      keyPrefix: "",
      enableAutoPipelining: false,
      redisOptions: { ...client.options.redisOptions, keyPrefix: "", connectionName, enableAutoPipelining: false },
    });
  }
  return client.duplicate({ connectionName, keyPrefix: "", enableAutoPipelining: false });
}

/** A flat copy of a string (V8 keeps `a + b` as a rope until something flattens it). */
function flat(s: string): string {
  return Buffer.from(s, "utf8").toString("utf8");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
