import { randomUUID } from "node:crypto";
import { compareOffsets, isOffset, type Envelope } from "../../core/envelope.js";
import { errorMessage } from "../../core/errors.js";
import { streamKeys } from "../../core/keys.js";
import type { Logger } from "../../core/logger.js";
import { isCluster, type RedisClient } from "../../core/redis/connection.js";
import { entryToEnvelope, type RawEntry } from "./entries.js";
import { PartitionReader, type FollowedStream } from "./partition-reader.js";
import type {
  Attachment,
  Encoder,
  FanoutOptions,
  FanoutSink,
  FanoutStats,
  LiveResult,
  OlderEventsReader,
  PublishObserver,
} from "./types.js";

/**
 * One attach() call: a sink following one conversation, and the Attachment handed back for it. A
 * class so that an idle subscription holds a few fields and no closures (detach is a method, the
 * settled `live` promises are shared).
 */
class Attached implements Attachment {
  /** catching-up → (pending-topic | topic | listener) → detached. */
  mode: "catching-up" | "pending-topic" | "topic" | "listener" | "detached" = "catching-up";
  /**
   * Live frames with offset ≤ after are skipped (the client already has them). null = no filter,
   * the common case: it keeps the per-listener hot path free of offset comparisons.
   */
  after: string | null = null;
  offset = "0";
  live: Promise<LiveResult> = LIVE;

  constructor(
    private readonly fanout: Fanout,
    readonly follower: Follower,
    readonly sink: FanoutSink,
  ) {}

  detach(): void {
    this.fanout.release(this);
  }
}

/** Settled outcomes, shared by every attachment that ends that way at once. */
const LIVE: Promise<LiveResult> = Promise.resolve("live");
const DETACHED: Promise<LiveResult> = Promise.resolve("detached");

const EMPTY = "0-0";

/** A function, not an inline comparison, because TS narrowing does not know that awaits change `mode`. */
const gone = (a: Attached): boolean => a.mode === "detached";

/**
 * Follows one conversation stream for every sink of this node. `position` is the offset of the
 * last event published to live sinks; only the partition loop advances it, and it publishes to the
 * joined sinks in the same synchronous step, which is what makes the catch-up hand-over exact.
 */
class Follower implements FollowedStream {
  readonly conversationId: string;
  readonly key: string;
  readonly partition: number;
  position = EMPTY;
  refs = 0;
  ready: Promise<void> = Promise.resolve();
  readonly listeners = new Set<Attached>();
  readonly pendingTopic = new Set<Attached>();
  /** encoder → number of topic-joined sinks using it. */
  readonly topicRefs = new Map<string, number>();
  /** encoder → its uWS topic for this conversation (built once, not per event). */
  readonly topics = new Map<string, string>();
  /**
   * The encoders with topic-joined sinks and their topics, as two parallel arrays: what publishOne
   * walks per event (no Map iterator or lookup on the hot path). Rebuilt when an encoder gains its
   * first or loses its last topic sink.
   */
  topicEncoders: string[] = [];
  topicNames: string[] = [];
  private readonly fanout: Fanout;

  constructor(fanout: Fanout, conversationId: string, partitions: number) {
    this.fanout = fanout;
    this.conversationId = conversationId;
    const k = streamKeys({ kind: "conversation", id: conversationId }, partitions);
    this.key = k.stream;
    this.partition = k.partition;
  }

  publishEntries(entries: RawEntry[]): void {
    for (const entry of entries) {
      const offset = entry[0].toString("latin1");
      // A re-created follower can receive a reply issued for its predecessor: never go backwards.
      if (compareOffsets(offset, this.position) <= 0) continue;
      this.position = offset;
      let env: Envelope;
      try {
        env = entryToEnvelope(this.conversationId, entry);
      } catch (e) {
        // Nothing can deliver an undecodable entry; skipping keeps every other event flowing.
        this.fanout.log?.error({ conversationId: this.conversationId, offset, err: errorMessage(e) }, "fan-out skipped an undecodable event");
        continue;
      }
      try {
        this.fanout.publishOne(this, env);
      } catch (e) {
        // An encoder or transport bug must not stop the partition loop for everyone else.
        this.fanout.log?.error({ conversationId: this.conversationId, offset, err: errorMessage(e) }, "fan-out publish failed");
      }
    }
  }
}

/**
 * Fan-out straight from the aggregate streams (DESIGN §Edge, I6, I7). See types.ts for the
 * vocabulary and docs/fanout.md for the hand-over argument.
 */
export class Fanout {
  readonly log: Logger | undefined;
  private readonly redis: RedisClient;
  private readonly partitions: number;
  private readonly publishTopic: ((topic: string, frame: string) => void) | undefined;
  private readonly olderEvents: OlderEventsReader | undefined;
  private readonly blockMs: number;
  private readonly pageSize: number;
  private readonly nodeId: string;
  private readonly encoders = new Map<string, Encoder>();
  private readonly followers = new Map<string, Follower>();
  /** Read group → its XREAD loop (see PartitionReader: a partition on Cluster, else partition mod readLoops). */
  private readonly readers = new Map<number, PartitionReader>();
  private readonly readLoops: number;
  private readonly pipelineReads: boolean;
  private readonly cluster: boolean;
  /** An array, not a Set: iterated once per event, changed only at start-up. */
  private observers: PublishObserver[] = [];
  /** Frames of the event being published, by encoder (reused: nothing allocated per event). */
  private readonly frameOf = new Map<string, string>();
  private frameEnv: Envelope | undefined;
  private frameSeq = 0;
  private seqNo = 0;
  private droppedCount = 0;
  private stopped = false;

  constructor(o: FanoutOptions) {
    if (!Number.isInteger(o.partitions) || o.partitions < 1) throw new RangeError(`partitions must be ≥ 1, got ${o.partitions}`);
    this.redis = o.redis;
    this.partitions = o.partitions;
    this.publishTopic = o.publish;
    this.log = o.log;
    this.olderEvents = o.olderEvents;
    this.blockMs = o.blockMs ?? 5000;
    this.pageSize = o.pageSize ?? 256;
    this.nodeId = o.nodeId ?? randomUUID().replace(/-/g, "").slice(0, 16);
    this.cluster = isCluster(o.redis);
    const loops = o.readLoops ?? 1;
    if (!Number.isInteger(loops) || loops < 1) throw new RangeError(`readLoops must be ≥ 1, got ${loops}`);
    this.readLoops = Math.min(loops, o.partitions);
    this.pipelineReads = o.pipelineReads ?? false;
  }

  /** Register a transport's encoder once at start-up, before any attach that names it. */
  registerEncoder(name: string, encode: Encoder): void {
    if (this.encoders.has(name)) throw new Error(`fan-out encoder "${name}" is already registered`);
    this.encoders.set(name, encode);
  }

  hasEncoder(name: string): boolean {
    return this.encoders.has(name);
  }

  /** The uWS topic carrying `encoder`'s frames of one conversation. */
  topic(conversationId: string, encoder: string): string {
    return `fo:${encoder}:${conversationId}`;
  }

  /**
   * Per-process publish sequence: the number of live events this node has published so far (each
   * live event gets the next number, see Encoder). Monotonic for the life of the Fanout.
   */
  get seq(): number {
    return this.seqNo;
  }

  /** Observe every live event (after `seq` was assigned, before any client gets it). Returns an unsubscribe. */
  onPublish(observer: PublishObserver): () => void {
    this.observers = [...this.observers, observer];
    return () => {
      this.observers = this.observers.filter((o) => o !== observer);
    };
  }

  stats(): FanoutStats {
    let listeners = 0;
    let topicSinks = 0;
    for (const f of this.followers.values()) {
      listeners += f.listeners.size;
      for (const n of f.topicRefs.values()) topicSinks += n;
    }
    const partitions = new Set<number>();
    for (const f of this.followers.values()) partitions.add(f.partition);
    return {
      conversations: this.followers.size,
      partitions: partitions.size,
      readLoops: [...this.readers.values()].filter((r) => r.size > 0).length,
      listeners,
      topicSinks,
      published: this.seqNo,
      dropped: this.droppedCount,
    };
  }

  /**
   * Follow `conversationId` for `sink`, starting after `from` (exclusive; "0" = from the first
   * event; null = live from now). Resolves once the conversation's latest offset is known, BEFORE
   * any frame reaches the sink: catch-up starts on a later turn of the event loop, so the caller can
   * send its acknowledgement first (CONTRACT §6). Catch-up frames go through `deliver`; then the sink
   * joins live (topic or listener) with no gap and no duplicate (I6).
   */
  async attach(conversationId: string, from: string | null, sink: FanoutSink): Promise<Attachment> {
    if (this.stopped) throw new Error("fan-out is stopped");
    if (!this.encoders.has(sink.encoder)) throw new Error(`fan-out encoder "${sink.encoder}" is not registered`);
    if (from !== null && !isOffset(from)) throw new RangeError(`not an offset: ${from}`);
    // A topic sink without `publish` would silently never receive a live frame.
    if (sink.join && !this.publishTopic) throw new Error("fan-out has no publish function for topic sinks");
    const follower = this.follow(conversationId);
    const a = new Attached(this, follower, sink);
    try {
      await follower.ready;
    } catch (e) {
      this.release(a);
      throw e;
    }
    a.offset = follower.position === EMPTY ? "0" : follower.position;
    if (gone(a)) {
      a.live = DETACHED;
      return a;
    }
    if (from === null) {
      this.joinLive(a, follower.position);
      return a;
    }
    a.live = this.catchUp(a, from).then(
      (r) => r,
      (e: unknown) => {
        this.log?.warn({ conversationId, from, err: errorMessage(e) }, "fan-out catch-up failed; dropping the client");
        this.drop(a);
        return "failed" as const;
      },
    );
    return a;
  }

  /** Stop every partition loop and forget every sink (they receive nothing more). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const readers = [...this.readers.values()];
    this.readers.clear();
    for (const f of this.followers.values()) {
      for (const a of [...f.listeners, ...f.pendingTopic]) a.mode = "detached";
    }
    this.followers.clear();
    await Promise.all(readers.map((r) => r.stop()));
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Called by a follower for each new live event, in offset order. Never awaits. */
  publishOne(f: Follower, env: Envelope): void {
    const seq = ++this.seqNo;
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) {
      try {
        (observers[i] as PublishObserver)(env, seq);
      } catch (e) {
        this.log?.error({ err: errorMessage(e) }, "fan-out publish observer threw");
      }
    }
    // Sinks that asked for a resume point ahead of this node join once the stream passes it.
    if (f.pendingTopic.size > 0) {
      for (const a of f.pendingTopic) {
        if (a.after === null || compareOffsets(env.offset, a.after) > 0) {
          f.pendingTopic.delete(a);
          this.joinTopic(a);
        }
      }
    }
    this.frameEnv = env;
    this.frameSeq = seq;
    this.frameOf.clear();
    try {
      const publish = this.publishTopic;
      const encoders = f.topicEncoders;
      if (publish && encoders.length > 0) {
        for (let i = 0; i < encoders.length; i++) publish(f.topicNames[i] as string, this.frame(encoders[i] as string));
      }
      if (f.listeners.size > 0) {
        for (const a of f.listeners) {
          if (a.after !== null) {
            if (compareOffsets(env.offset, a.after) <= 0) continue;
            a.after = null;
          }
          if (!this.safeDeliver(a, this.frame(a.sink.encoder), env)) this.drop(a);
        }
      }
    } finally {
      // Frames must not outlive their event (nor keep it alive).
      this.frameEnv = undefined;
      this.frameOf.clear();
    }
  }

  /** The frame of the event being published for `encoder`: encoded once, on first use. */
  private frame(encoder: string): string {
    let fr = this.frameOf.size === 0 ? undefined : this.frameOf.get(encoder);
    if (fr === undefined) {
      fr = (this.encoders.get(encoder) as Encoder)(this.frameEnv as Envelope, this.frameSeq);
      this.frameOf.set(encoder, fr);
    }
    return fr;
  }

  private topicOf(f: Follower, encoder: string): string {
    let t = f.topics.get(encoder);
    if (t === undefined) {
      t = this.topic(f.conversationId, encoder);
      f.topics.set(encoder, t);
    }
    return t;
  }

  /** Rebuild the follower's per-event topic list from topicRefs (on a first join or a last leave). */
  private refreshTopics(f: Follower): void {
    const encoders: string[] = [];
    const names: string[] = [];
    for (const [encoder, n] of f.topicRefs) {
      if (n <= 0) continue;
      encoders.push(encoder);
      names.push(this.topicOf(f, encoder));
    }
    f.topicEncoders = encoders;
    f.topicNames = names;
  }

  private follow(conversationId: string): Follower {
    let f = this.followers.get(conversationId);
    if (!f) {
      const nf = new Follower(this, conversationId, this.partitions);
      this.followers.set(conversationId, nf);
      nf.ready = this.startFollowing(nf);
      // attach() awaits `ready`; keep an unobserved rejection from crashing the process meanwhile.
      nf.ready.catch(() => undefined);
      f = nf;
    }
    f.refs++;
    return f;
  }

  private async startFollowing(f: Follower): Promise<void> {
    try {
      // Start from the current last entry: older events reach clients through catch-up only.
      const last = (await this.redis.xrevrange(f.key, "+", "-", "COUNT", 1)) as Array<[string, string[]]>;
      f.position = last[0]?.[0] ?? EMPTY;
    } catch (e) {
      if (this.followers.get(f.conversationId) === f) this.followers.delete(f.conversationId);
      throw e;
    }
    if (f.refs === 0 || this.stopped || this.followers.get(f.conversationId) !== f) return;
    this.reader(this.groupOf(f.partition)).add(f);
  }

  /** One XREAD may span only one slot on Cluster (one partition); on a single Redis, any keys. */
  private groupOf(partition: number): number {
    return this.cluster ? partition : partition % this.readLoops;
  }

  private reader(group: number): PartitionReader {
    let r = this.readers.get(group);
    if (!r) {
      r = new PartitionReader({
        group,
        redis: this.redis,
        nodeId: this.nodeId,
        blockMs: this.blockMs,
        count: this.pageSize,
        log: this.log,
        pipeline: this.pipelineReads,
      });
      this.readers.set(group, r);
    }
    return r;
  }

  /**
   * Catch up from `from` to the follower's position, then join live in the same synchronous step.
   * Between our last read and the join the follower may have published more: we loop until our
   * cursor has reached its position, with no await between that check and the join (JS runs one
   * thing at a time, so nothing is published in between).
   */
  private async catchUp(a: Attached, from: string): Promise<LiveResult> {
    const f = a.follower;
    await new Promise<void>((r) => setImmediate(r));
    let cursor = from;
    let lastVersion: number | undefined;
    if (this.olderEvents) {
      const r = await this.replayArchive(a, cursor);
      if (r.result) return r.result;
      cursor = r.cursor;
      lastVersion = r.lastVersion;
    }
    let archiveRetries = 0;
    for (;;) {
      if (gone(a)) return "detached";
      const target = f.position;
      if (compareOffsets(cursor, target) >= 0) {
        this.joinLive(a, cursor);
        return "live";
      }
      const page = (await this.redis.xrangeBuffer(f.key, `(${cursor}`, target, "COUNT", this.pageSize)) as RawEntry[];
      if (gone(a)) return "detached";
      if (page.length === 0) {
        // Nothing left up to target (it was trimmed meanwhile, or target was EMPTY).
        cursor = target;
        continue;
      }
      for (const entry of page) {
        const env = entryToEnvelope(f.conversationId, entry);
        if (lastVersion !== undefined && env.version > lastVersion + 1 && this.olderEvents && archiveRetries < 3) {
          // The archiver trimmed events between our archive read and this XRANGE: read them there.
          archiveRetries++;
          const r = await this.replayArchive(a, cursor, true);
          if (r.result) return r.result;
          cursor = r.cursor;
          lastVersion = r.lastVersion;
          break;
        }
        if (!this.safeDeliver(a, this.encode(a.sink.encoder, env), env)) {
          this.drop(a);
          return "dropped";
        }
        cursor = env.offset;
        lastVersion = env.version;
        const paced = await this.pace(a);
        if (paced) return paced;
      }
    }
  }

  /**
   * Replay from the archive the events after `cursor` that Redis no longer holds. Skipped when Redis
   * still holds everything after `cursor` (its first entry is version 1, or is at/before cursor).
   */
  private async replayArchive(
    a: Attached,
    from: string,
    force = false,
  ): Promise<{ cursor: string; lastVersion: number | undefined; result?: LiveResult }> {
    const f = a.follower;
    const reader = this.olderEvents as OlderEventsReader;
    const firstRaw = (await this.redis.xrangeBuffer(f.key, "-", "+", "COUNT", 1)) as RawEntry[];
    const first = firstRaw[0] ? entryToEnvelope(f.conversationId, firstRaw[0]) : undefined;
    let cursor = from;
    let lastVersion: number | undefined;
    if (!force && first && (first.version === 1 || compareOffsets(from, first.offset) >= 0)) return { cursor, lastVersion };
    for await (const env of reader(f.conversationId, from)) {
      if (gone(a)) return { cursor, lastVersion, result: "detached" };
      if (compareOffsets(env.offset, cursor) <= 0) continue;
      // Redis holds the rest (and the live tail): hand over to XRANGE there.
      if (first && compareOffsets(env.offset, first.offset) >= 0) break;
      if (!this.safeDeliver(a, this.encode(a.sink.encoder, env), env)) {
        this.drop(a);
        return { cursor, lastVersion, result: "dropped" };
      }
      cursor = env.offset;
      lastVersion = env.version;
      const paced = await this.pace(a);
      if (paced) return { cursor, lastVersion, result: paced };
    }
    return { cursor, lastVersion };
  }

  /** Catch-up waits for a backpressured client (see FanoutSink.whenWritable); undefined = go on. */
  private async pace(a: Attached): Promise<LiveResult | undefined> {
    let wait: Promise<boolean> | undefined;
    try {
      wait = a.sink.whenWritable?.();
    } catch (e) {
      this.log?.error({ err: errorMessage(e) }, "fan-out sink whenWritable threw");
      wait = Promise.resolve(false);
    }
    if (!wait) return undefined;
    const ok = await wait.catch(() => false);
    if (gone(a)) return "detached";
    if (!ok) {
      this.drop(a);
      return "dropped";
    }
    return undefined;
  }

  private encode(encoder: string, env: Envelope): string {
    return (this.encoders.get(encoder) as Encoder)(env, this.seqNo);
  }

  private joinLive(a: Attached, after: string): void {
    if (gone(a)) return;
    const f = a.follower;
    // Caught up exactly to the follower: every later live event is new to the client.
    const ahead = compareOffsets(after, f.position) > 0;
    a.after = ahead ? after : null;
    if (a.sink.join) {
      if (!ahead) this.joinTopic(a);
      else {
        a.mode = "pending-topic";
        f.pendingTopic.add(a);
      }
      return;
    }
    a.mode = "listener";
    f.listeners.add(a);
  }

  private joinTopic(a: Attached): void {
    const f = a.follower;
    a.mode = "topic";
    const refs = (f.topicRefs.get(a.sink.encoder) ?? 0) + 1;
    f.topicRefs.set(a.sink.encoder, refs);
    if (refs === 1) this.refreshTopics(f);
    try {
      a.sink.join?.(this.topic(f.conversationId, a.sink.encoder));
    } catch (e) {
      this.log?.error({ conversationId: f.conversationId, err: errorMessage(e) }, "fan-out sink join threw");
      this.drop(a);
    }
  }

  private safeDeliver(a: Attached, frame: string, env: Envelope): boolean {
    try {
      return a.sink.deliver(frame, env);
    } catch (e) {
      this.log?.error({ conversationId: env.conversationId, err: errorMessage(e) }, "fan-out sink deliver threw");
      return false;
    }
  }

  private drop(a: Attached): void {
    if (gone(a)) return;
    this.release(a);
    this.droppedCount++;
    try {
      a.sink.onDrop?.();
    } catch (e) {
      this.log?.error({ err: errorMessage(e) }, "fan-out sink onDrop threw");
    }
  }

  /** Forget `a` (Attached.detach, drop, failed start). Idempotent. */
  release(a: Attached): void {
    if (gone(a)) return;
    const f = a.follower;
    if (a.mode === "topic") {
      const n = (f.topicRefs.get(a.sink.encoder) ?? 1) - 1;
      if (n > 0) f.topicRefs.set(a.sink.encoder, n);
      else {
        f.topicRefs.delete(a.sink.encoder);
        this.refreshTopics(f);
      }
    }
    f.listeners.delete(a);
    f.pendingTopic.delete(a);
    a.mode = "detached";
    f.refs--;
    if (f.refs === 0 && this.followers.get(f.conversationId) === f) {
      this.followers.delete(f.conversationId);
      this.readers.get(this.groupOf(f.partition))?.remove(f);
    }
  }
}
