import { GENESIS_HASH, chainHash } from "../chain.js";
import { decodeEvent, encodeEvent } from "../codec.js";
import { CURRENT_SCHEMA, type NewEvent, type RecordedEvent, type StoredEvent } from "../envelope.js";
import { TributaryError, VersionConflictError } from "../errors.js";
import type { AppendOptions, AppendResult, EventStore, LogEntry, ReadOptions, StreamHead } from "../event-store.js";
import { keys, parseStreamKey, streamKeys, type StreamRef } from "../keys.js";
import { trimOldest, trimSlack } from "../map-trim.js";
import { appendWeight, type GroupAppend, type GroupShared } from "./append-group.js";
import { callAppendGroup } from "./append-group-call.js";
import { isCluster, type RedisClient } from "./connection.js";
import { GroupCommit, type GroupCommitStats } from "./group-commit.js";
import { StaleHeadError, defineScripts, parseAppendReply, queueAppend, runAppend, type AppendArgs, type AppendKeys } from "./scripts.js";
import { xrangeRaw, type RawStreamEntry } from "./stream-range.js";

export interface RedisEventStoreOptions {
  /** PARTITIONS: fixed once data exists, because every key carries its partition's hash tag. */
  partitions: number;
  /** IDEM_TTL: how long a command id is remembered; a retry after that appends again. */
  idemTtlMs: number;
  /**
   * `local` acknowledges once the primary has the append. `wait-replica` also WAITs for one replica
   * (on the same connection, so it covers this append): slower, but an acknowledged event survives
   * losing the primary. A WAIT time-out throws UNAVAILABLE although the append is on the primary —
   * retrying with the same command id is safe (it answers the first result).
   */
  durability?: "local" | "wait-replica";
  /** WAIT time-out in `wait-replica` mode [1000 ms]. */
  replicaTimeoutMs?: number;
  /**
   * Chain heads remembered per stream [10,000]. With one writer per aggregate (I3) the head the
   * writer needs is almost always the one its previous append produced, so the hot path is a single
   * round trip (the script) instead of two (HMGET meta, then the script). A stale entry costs one
   * retry: the script refuses a previous hash that is not the stored head and returns the real one.
   */
  headCacheSize?: number;
  /**
   * Group commit (docs/event-store.md, "Group commit") [on]: appends issued while a script call is
   * in flight, or in the same tick, go out as ONE script call, each append keeping its own outcome.
   * On a Redis Cluster a call carries appends of one partition (one slot); on a single Redis,
   * appends of any partitions (`perPartition: true` forces the cluster's way there too).
   * `maxAppends` [64] and `maxBytes` [512 KiB] cap one call (bigger calls hold Redis longer for
   * everyone). `maxInFlight` calls of a group may be in flight at once [2 on a single Redis with
   * local durability, else 1], a queue with room for both split into equal calls of at least
   * `minSplit` [4] appends, so that Node turns one call's reply into the next call while Redis runs
   * the other (docs/event-store.md, "Two calls in flight per group"). `false` sends one script call
   * per append (append-5.lua), as before group commit.
   */
  groupCommit?: false | { maxAppends?: number; maxBytes?: number; perPartition?: boolean; maxInFlight?: number; minSplit?: number };
}

interface CachedHead {
  version: number;
  hash: string;
}

/** The Redis store is an EventStore that also says how well group commit groups (for benches, tests, metrics). */
export interface RedisEventStore extends EventStore {
  /** Script calls made and appends carried by group commit; undefined when it is off. */
  readonly groupCommitStats: Readonly<GroupCommitStats> | undefined;
}

/** The Redis Streams event store (I1, I2). See docs/event-store.md for the entry formats. */
export function createRedisEventStore(redis: RedisClient, opts: RedisEventStoreOptions): RedisEventStore {
  const { partitions, idemTtlMs } = opts;
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be ≥ 1, got ${partitions}`);
  const durability = opts.durability ?? "local";
  const replicaTimeoutMs = opts.replicaTimeoutMs ?? 1000;
  const cacheSize = opts.headCacheSize ?? 10_000;
  const heads = new Map<string, CachedHead>();
  const callOpts = { durability, replicaTimeoutMs };
  // Only a WAIT after the call needs a duplicate to write (its dedupe record, rewritten unchanged):
  // under local durability a duplicate writes nothing (docs/event-store.md, "Durability").
  const rewriteDuplicate = durability === "wait-replica";
  const shared: GroupShared = {
    idemTtlMs,
    partitions,
    rewriteDuplicates: rewriteDuplicate,
    logs: Array.from({ length: partitions }, (_, p) => keys.log(p)),
    idseqs: Array.from({ length: partitions }, (_, p) => keys.idseq(p)),
  };
  // A script call's keys must share a slot on a cluster: group per partition there. A single Redis
  // holds every key, so one call may carry appends of any partitions (one group for all).
  const perPartition = opts.groupCommit === false ? true : (opts.groupCommit?.perPartition ?? isCluster(redis));
  const committer =
    opts.groupCommit === false
      ? undefined
      : new GroupCommit<number, GroupAppend, AppendResult>({
          flush: (_group, appends) => callAppendGroup(redis, shared, appends, callOpts),
          maxItems: opts.groupCommit?.maxAppends ?? 64,
          maxWeight: opts.groupCommit?.maxBytes ?? 512 * 1024,
          weight: appendWeight,
          // Two in flight on the hot path only (single Redis, local durability), where it was measured
          // and where one group carries every partition. A cluster has a group per partition, whose
          // calls already overlap each other; under wait-replica each call waits on its own WAIT.
          maxInFlight: opts.groupCommit?.maxInFlight ?? (perPartition || durability !== "local" ? 1 : 2),
          ...(opts.groupCommit?.minSplit !== undefined ? { minSplit: opts.groupCommit.minSplit } : {}),
        });

  const slack = trimSlack(cacheSize);
  const remember = (key: string, head: CachedHead): void => {
    if (cacheSize <= 0) return;
    // Updated in place, so the Map's order is the order of first write and the oldest heads go
    // first (FIFO, not LRU: moving a key on every append cost more than the rare HMGET an evicted
    // head costs the next append — and the repository passes its own head, expectedHash, anyway).
    heads.set(key, head);
    if (heads.size > cacheSize + slack) trimOldest(heads, cacheSize);
  };

  async function readHead(ref: StreamRef): Promise<StreamHead> {
    const { meta } = streamKeys(ref, partitions);
    const [version, hash, last] = await redis.hmget(meta, "version", "hash", "last");
    return { version: version ? Number(version) : 0, hash: hash ?? GENESIS_HASH, lastOffset: last ?? null };
  }

  function build(events: NewEvent[], expectedVersion: number, prevHash: string): AppendArgs["events"] {
    let prev = prevHash;
    return events.map((e, i) => {
      const record: StoredEvent = { s: CURRENT_SCHEMA, type: e.type, version: expectedVersion + 1 + i, at: e.at, data: e.data };
      if (e.meta !== undefined) record.meta = e.meta;
      const bytes = encodeEvent(record);
      prev = chainHash(prev, bytes);
      return { bytes, hash: prev };
    });
  }

  async function executeAlone(k: AppendKeys, args: AppendArgs): Promise<AppendResult> {
    if (durability === "local") return parseAppendReply(args.streamName, args.expectedVersion, await runAppend(redis, k, args));
    // Same pipeline = same connection (and, on a cluster, the slot's node), so WAIT covers this write.
    // The script must be defined on the client before a pipeline can queue it.
    defineScripts(redis);
    const p = redis.pipeline();
    queueAppend(p, k, args);
    p.wait(1, replicaTimeoutMs);
    const replies = (await p.exec()) ?? [];
    const [appendErr, appendReply] = replies[0] ?? [new Error("empty pipeline reply"), null];
    if (appendErr) throw appendErr;
    const result = parseAppendReply(args.streamName, args.expectedVersion, appendReply);
    const [waitErr, acked] = replies[1] ?? [new Error("no WAIT reply"), null];
    if (waitErr || Number(acked) < 1) {
      throw new TributaryError("UNAVAILABLE", `append to ${args.streamName} not acknowledged by a replica within ${replicaTimeoutMs} ms`, {
        details: { stream: args.streamName, toVersion: result.toVersion },
        retryAfter: 1,
        cause: waitErr ?? undefined,
      });
    }
    return result;
  }

  /** One append through group commit, or alone through append-5.lua when group commit is off. */
  function execute(k: AppendKeys, args: AppendArgs): Promise<AppendResult> {
    if (!committer) return executeAlone(k, args);
    return committer.submit(perPartition ? args.partition : 0, {
      partition: args.partition,
      stream: k.stream,
      meta: k.meta,
      idem: k.idem,
      expectedVersion: args.expectedVersion,
      prevHash: args.prevHash,
      idemTtlMs: args.idemTtlMs,
      events: args.events,
    });
  }

  /** AppendOptions.dedupeTtlMs → the append's TTL: never longer than IDEM_TTL (0 = forever). */
  function dedupeTtlOf(requested: number | undefined): number {
    if (requested === undefined) return idemTtlMs;
    if (!Number.isSafeInteger(requested) || requested < 1) {
      throw new TributaryError("BAD_REQUEST", `dedupe TTL must be an integer ≥ 1 ms, got ${requested}`);
    }
    return idemTtlMs > 0 ? Math.min(requested, idemTtlMs) : requested;
  }

  async function append(ref: StreamRef, expectedVersion: number, events: NewEvent[], commandId: string, opts?: AppendOptions): Promise<AppendResult> {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
      throw new TributaryError("BAD_REQUEST", `expected version must be an integer ≥ 0, got ${expectedVersion}`);
    }
    if (events.length === 0) throw new TributaryError("BAD_REQUEST", "append needs at least one event");
    if (commandId.length === 0) throw new TributaryError("BAD_REQUEST", "append needs a command id");
    const dedupeTtlMs = dedupeTtlOf(opts?.dedupeTtlMs);
    const sk = streamKeys(ref, partitions);
    const k: AppendKeys = {
      stream: sk.stream,
      meta: sk.meta,
      log: sk.log,
      // Scoped to the stream: the same command id on another aggregate is another command.
      idem: keys.idem(sk.partition, `${ref.kind}:${ref.id}:${commandId}`),
      idseq: keys.idseq(sk.partition),
    };
    const cached = heads.get(sk.stream);
    const expectedHash = opts?.expectedHash;
    let prevHash: string;
    if (expectedHash !== undefined) prevHash = expectedHash;
    else if (cached && cached.version === expectedVersion) prevHash = cached.hash;
    else if (expectedVersion === 0) prevHash = GENESIS_HASH;
    else {
      const head = await readHead(ref);
      // A mismatch here is answered by the script (dedupe first, then CONFLICT); any hash will do.
      prevHash = head.hash;
    }
    const args: AppendArgs = {
      expectedVersion,
      prevHash,
      idemTtlMs: dedupeTtlMs,
      streamName: sk.stream,
      partitions,
      partition: sk.partition,
      rewriteDuplicate,
      events: build(events, expectedVersion, prevHash),
    };
    let result: AppendResult;
    try {
      result = await execute(k, args);
    } catch (e) {
      if (e instanceof StaleHeadError && e.actualVersion === expectedVersion && expectedHash !== undefined) {
        // The caller decided on another history than the stream's (AppendOptions.expectedHash).
        heads.delete(sk.stream);
        throw new VersionConflictError(sk.stream, expectedVersion, e.actualVersion);
      }
      if (e instanceof StaleHeadError && e.actualVersion === expectedVersion) {
        // Our cached head was wrong while the version matched: rebuild the chain from the real head.
        const retry = { ...args, prevHash: e.actualHash, events: build(events, expectedVersion, e.actualHash) };
        try {
          result = await execute(k, retry);
        } catch (e2) {
          heads.delete(sk.stream);
          throw e2;
        }
      } else {
        heads.delete(sk.stream);
        throw e;
      }
    }
    // A duplicate's result is history: the stream may have moved on since, so it says nothing of the head.
    if (!result.duplicate) remember(sk.stream, { version: result.toVersion, hash: result.hash });
    return result;
  }

  function toRecorded(ref: StreamRef, entry: RawStreamEntry, key: string): RecordedEvent {
    const bytes = entry.fields.get("e");
    const hash = entry.fields.get("h");
    if (!bytes || !hash) throw new TributaryError("INTERNAL", `entry ${entry.id} of ${key} lacks its e/h fields`);
    const rec = decodeEvent(bytes);
    const out: RecordedEvent = { stream: ref, offset: entry.id, version: rec.version, type: rec.type, at: rec.at, data: rec.data, hash: hash.toString("utf8") };
    if (rec.meta !== undefined) out.meta = rec.meta;
    return out;
  }

  async function read(ref: StreamRef, ro: ReadOptions = {}): Promise<RecordedEvent[]> {
    const { stream } = streamKeys(ref, partitions);
    const entries = await xrangeRaw(redis, stream, ro);
    return entries.map((en) => toRecorded(ref, en, stream));
  }

  async function readLog(partition: number, ro: ReadOptions = {}): Promise<LogEntry[]> {
    if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
      throw new TributaryError("BAD_REQUEST", `partition must be in 0..${partitions - 1}, got ${partition}`);
    }
    const log = keys.log(partition);
    const entries = await xrangeRaw(redis, log, ro);
    return entries.map((en) => {
      const k = en.fields.get("k")?.toString("utf8") ?? "";
      const o = en.fields.get("o")?.toString("utf8");
      const ref = parseStreamKey(k);
      if (!ref || !o) throw new TributaryError("INTERNAL", `log entry ${en.id} of ${log} lacks a valid k/o`);
      return { partition, logOffset: en.id, event: toRecorded(ref, { id: o, fields: en.fields }, log) };
    });
  }

  /**
   * WAIT counts the writes of the connection that sends it, and a connection that only read has
   * nothing to wait for: so the barrier first writes a tiny key in the stream's slot (same node,
   * same replication stream, after every write the read could have seen), then WAITs for it.
   */
  async function confirm(ref: StreamRef): Promise<void> {
    if (durability === "local") return;
    const { partition } = streamKeys(ref, partitions);
    const p = redis.pipeline();
    p.set(keys.durable(partition), "1", "PX", 60_000);
    p.wait(1, replicaTimeoutMs);
    const replies = (await p.exec()) ?? [];
    const [setErr] = replies[0] ?? [new Error("empty pipeline reply")];
    if (setErr) throw setErr;
    const [waitErr, acked] = replies[1] ?? [new Error("no WAIT reply"), null];
    if (waitErr || Number(acked) < 1) {
      throw new TributaryError("UNAVAILABLE", `state of ${ref.kind} ${ref.id} not confirmed by a replica within ${replicaTimeoutMs} ms`, {
        retryAfter: 1,
        cause: waitErr ?? undefined,
      });
    }
  }

  return { append, read, head: readHead, readLog, confirm, groupCommitStats: committer?.stats };
}
