import { compareOffsets, type RecordedEvent } from "../../core/envelope.js";
import { VersionConflictError, errorMessage } from "../../core/errors.js";
import type { AppendOptions, AppendResult, EventStore, ReadOptions } from "../../core/event-store.js";
import type { AggregateKind, StreamRef } from "../../core/keys.js";
import type { Logger } from "../../core/logger.js";
import { trimOldest, trimSlack } from "../../core/map-trim.js";
import type { DecidedEvent, Decider, Decision } from "../decider.js";
import type { Snapshot, SnapshotStore } from "./snapshots.js";
import type { StreamFacts, StreamProbe } from "./stream-probe.js";

/** Anything that reads a stream in order: the event store, or the archive-spanning reader. */
export interface EventReader {
  read(ref: StreamRef, opts?: ReadOptions): Promise<RecordedEvent[]>;
}

export interface Loaded<S> {
  state: S;
  version: number;
  /** Offset of the last folded event ("0" for an empty stream). */
  offset: string;
  /** Offsets of the events folded since load, by version — the runtime answers with them. */
  lastUsed: number;
  /**
   * Chain value after the last folded event, once one was read or appended here (unknown after a
   * snapshot alone): appends pass it as `expectedHash`, so a stream rewritten under this state at
   * the same version refuses them with a CONFLICT (and the state is rehydrated) instead of taking a
   * decision made on events it lost.
   */
  hash?: string;
}

export interface RepositoryOptions<C, E extends DecidedEvent, S> {
  kind: AggregateKind;
  decider: Decider<C, E, S>;
  store: EventStore;
  /** Reads history (archive + Redis); defaults to the store. */
  reader?: EventReader;
  snapshots: SnapshotStore;
  /**
   * Asks the stream's meta for its version and snapshot pointer before a first load (one command),
   * so a new stream is not read at all and a young one is read from Redis alone (stream-probe.ts).
   * Without it, rehydration asks `snapshots.exists` and reads through `reader`.
   */
  probe?: StreamProbe;
  /** Write a snapshot every N events [100]. */
  snapshotEvery?: number;
  /** Actors kept in memory; the least recently used are passivated [10,000] (trimmed back once 1/16 over). */
  cacheSize?: number;
  /** Attempts on a version conflict before giving up (hand-over races) [8]. */
  maxConflictRetries?: number;
  log?: Logger;
  /** Clock for passivation only (never for decisions). */
  now?: () => number;
}

export type EventMetaIn = { userId?: string; tenantId?: string; requestId?: string };

/** How one `execute` appends (beyond its command id and meta). */
export interface ExecuteOptions {
  /** AppendOptions.dedupeTtlMs: how long a retry of this command is answered from its first append. */
  dedupeTtlMs?: number;
}

export interface Executed<E, S> {
  decision: Decision<E>;
  loaded: Loaded<S>;
  /** Present when events were appended (or a duplicate command id answered the first append). */
  appended?: AppendResult;
}

const PAGE = 1000;
/** Loads of a cached actor closer together than this do not move it in the LRU order (see `load`). */
const REORDER_MS = 1000;

/**
 * The stream no longer continues the cached state: it holds, after the state's last offset, events
 * at versions the state already has — or it is behind the state. That happens when the stream lost
 * its tail while this process still had it in memory: under `wait-replica`, reads (a tail read after
 * a CONFLICT, a first load) may see an append whose WAIT timed out, and a failover to a replica
 * that lacked it then drops it from the stream — but not from the cache. The cure is to forget the
 * cached state and rehydrate from the stream (docs/reliability.md, "Cached state after a failover").
 */
export class DivergedStateError extends Error {
  constructor(kind: string, id: string, detail: string) {
    super(`cached ${kind} ${id} no longer matches its stream: ${detail}`);
    this.name = "DivergedStateError";
  }
}

/**
 * Loads aggregates (snapshot + the events after it), runs their decider and appends the decision
 * with the expected version (STYLE §1, emmett's handleCommandWithDecider). Commands for one
 * aggregate are serialised in-process; across processes the expected version is the guard, and a
 * conflict (only during a partition hand-over, I3) reloads the tail and decides again — it is never
 * surfaced to the caller.
 */
export class AggregateRepository<C, E extends DecidedEvent, S> {
  readonly kind: AggregateKind;
  private readonly cache = new Map<string, Loaded<S>>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly reader: EventReader;
  private readonly snapshotEvery: number;
  /** Actors kept in memory (ACTOR_CACHE_SIZE for a worker). */
  readonly cacheSize: number;
  private readonly slack: number;
  private readonly maxRetries: number;
  private readonly now: () => number;
  /**
   * States are immutable values (every evolve returns a new one), so every new actor can start from
   * the same initial state: computing it (XState's getInitialSnapshot builds an actor) on each
   * first load was a visible share of a new ledger's cost.
   */
  private readonly initial: S;

  constructor(private readonly o: RepositoryOptions<C, E, S>) {
    this.initial = o.decider.initialState();
    this.kind = o.kind;
    this.reader = o.reader ?? o.store;
    this.snapshotEvery = o.snapshotEvery ?? 100;
    this.cacheSize = o.cacheSize ?? 10_000;
    this.slack = trimSlack(this.cacheSize);
    this.maxRetries = o.maxConflictRetries ?? 8;
    this.now = o.now ?? Date.now;
  }

  ref(id: string): StreamRef {
    return { kind: this.kind, id };
  }

  /** Run `fn` with exclusive access to one aggregate within this process. */
  async exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  /** The current state; `fresh` re-checks the stream head (another process may have written). */
  async load(id: string, opts: { fresh?: boolean } = {}): Promise<Loaded<S>> {
    const cached = this.cache.get(id);
    if (cached) {
      const now = this.now();
      // Moving an actor to the young end of the cache (delete + set) on every load was a visible
      // cost at thousands of loads a second (a command loads its actors several times); one used
      // again within REORDER_MS keeps its place, so eviction is least-recently-used to within that.
      if (now - cached.lastUsed >= REORDER_MS) this.touch(id, cached);
      cached.lastUsed = now;
      if (opts.fresh) return this.refresh(id, cached);
      return cached;
    }
    const loaded = await this.rehydrate(id);
    this.touch(id, loaded);
    return loaded;
  }

  /** Rehydrate from the latest snapshot plus the events after it (or from the start). */
  async rehydrate(id: string, opts: { useSnapshot?: boolean } = {}): Promise<Loaded<S>> {
    const ref = this.ref(id);
    const facts = this.o.probe ? await this.o.probe.probe(ref) : undefined;
    // Only look in the blob store when the stream's meta says a snapshot was written: most actors
    // are young, and a miss costs a file open or an S3 round trip on every first load.
    const useSnapshot = opts.useSnapshot !== false && (facts ? facts.snapshot : await this.o.snapshots.exists(ref));
    // When the pointer says where the snapshot ends and the stream has events after it, read that
    // tail while the blob is being fetched: the two waits overlap instead of adding up. The page is
    // only a guess at what follows the snapshot (another worker may have written a newer one);
    // catchUpTo uses it only where it continues the state without a gap.
    const at = useSnapshot ? facts?.snapshotAt : undefined;
    const prefetched = at && facts && facts.version > at.version ? this.prefetch(ref, at.offset) : undefined;
    let snap: Snapshot | null = null;
    if (useSnapshot) {
      try {
        snap = await this.o.snapshots.get(ref);
      } catch (e) {
        this.o.log?.warn({ err: errorMessage(e), stream: id }, "snapshot unreadable; folding from the start");
      }
    }
    let loaded: Loaded<S> = { state: this.initial, version: 0, offset: "0", lastUsed: this.now() };
    if (snap && facts && snap.version > facts.version) {
      // Written from a cached state whose tail the stream has since lost (DivergedStateError).
      this.o.log?.warn({ stream: id, snapshot: snap.version, version: facts.version }, "snapshot ahead of its stream; folding from the start");
      snap = null;
    }
    if (snap) {
      try {
        loaded = { state: this.o.decider.fromSnapshot(snap.state), version: snap.version, offset: snap.offset, lastUsed: this.now() };
      } catch (e) {
        this.o.log?.warn({ err: errorMessage(e), stream: id }, "snapshot of the wrong shape; folding from the start");
      }
    }
    try {
      if (facts) await this.catchUpTo(id, loaded, facts, prefetched);
      else await this.catchUp(id, loaded);
    } catch (e) {
      // A snapshot the stream does not continue (written from a state whose tail the stream lost,
      // then rewritten past it): fold the stream alone.
      if (!(e instanceof DivergedStateError) || loaded.version === 0) throw e;
      this.o.log?.warn({ err: errorMessage(e), stream: id }, "snapshot not continued by its stream; folding from the start");
      loaded = { state: this.initial, version: 0, offset: "0", lastUsed: this.now() };
      await this.catchUp(id, loaded);
    }
    return loaded;
  }

  /** First page of Redis after `from`, started early; a failure only means it is read again later. */
  private prefetch(ref: StreamRef, from: string): Promise<RecordedEvent[] | undefined> {
    return this.o.store.read(ref, { from, limit: PAGE }).catch(() => undefined);
  }

  /** Fold every event after `loaded.offset` into it, through the history reader (archive + Redis). */
  private async catchUp(id: string, loaded: Loaded<S>): Promise<void> {
    const ref = this.ref(id);
    for (;;) {
      const page = await this.reader.read(ref, { from: loaded.offset, limit: PAGE });
      for (const e of page) this.fold(loaded, e);
      if (page.length < PAGE) return;
    }
  }

  /**
   * `catchUp` when the stream's version is known: nothing to read for a stream with no events beyond
   * `loaded`, and Redis alone (one XRANGE, no archive index) while what it returns continues
   * `loaded` without a gap. Trimming only ever removes a stream's oldest entries, so a first entry
   * with the next version means Redis still holds everything after it; a gap, or fewer events than
   * the stream's version, means the archive holds some, and the history reader takes over from
   * where we are. `prefetched` is a first Redis page read from the snapshot pointer's offset: used
   * the same way (events `loaded` already holds are skipped by `fold`), else read again.
   */
  private async catchUpTo(id: string, loaded: Loaded<S>, facts: StreamFacts, prefetched?: Promise<RecordedEvent[] | undefined>): Promise<void> {
    if (facts.version <= loaded.version) return;
    let page = prefetched ? await prefetched : undefined;
    if (this.reader !== this.o.store || page) {
      const ref = this.ref(id);
      for (;;) {
        page ??= await this.o.store.read(ref, { from: loaded.offset, limit: PAGE });
        const first = page[0];
        if (first === undefined || first.version > loaded.version + 1) break; // trimmed past us (or a stale guess)
        for (const e of page) this.fold(loaded, e);
        if (page.length < PAGE) {
          if (loaded.version >= facts.version) return;
          break;
        }
        page = undefined;
      }
    }
    await this.catchUp(id, loaded);
  }

  private fold(loaded: Loaded<S>, e: RecordedEvent): void {
    if (e.version <= loaded.version) {
      // Already folded (a snapshot overlap: it lies at or before the state's last offset) — unless it
      // lies beyond it: then the stream was rewritten under the cached state (see DivergedStateError).
      if (loaded.offset !== "0" && compareOffsets(e.offset, loaded.offset) > 0) {
        throw new DivergedStateError(this.kind, e.stream.id, `v${e.version} at ${e.offset}, after the state's v${loaded.version} at ${loaded.offset}`);
      }
      return;
    }
    if (e.version !== loaded.version + 1) {
      throw new Error(`stream ${this.kind}:${e.stream.id} has a version gap: ${loaded.version} → ${e.version}`);
    }
    const event = this.o.decider.parseEvent({ type: e.type, data: e.data });
    loaded.state = this.o.decider.evolve(loaded.state, event);
    loaded.version = e.version;
    loaded.offset = e.offset;
    loaded.hash = e.hash;
  }

  /**
   * Decide `command` against the aggregate and append what it decides. `at` stamps the events;
   * `commandId` makes the append idempotent (a redelivered command answers the first append).
   */
  async execute(
    id: string,
    commandId: string,
    at: string,
    decide: (state: S) => Decision<E>,
    meta: EventMetaIn = {},
    opts: ExecuteOptions = {},
  ): Promise<Executed<E, S>> {
    return this.exclusive(id, () => this.executeUnlocked(id, commandId, at, decide, meta, opts));
  }

  /** `execute` for a caller that already holds `exclusive(id)` (it would wait for itself otherwise). */
  async executeUnlocked(
    id: string,
    commandId: string,
    at: string,
    decide: (state: S) => Decision<E>,
    meta: EventMetaIn = {},
    opts: ExecuteOptions = {},
  ): Promise<Executed<E, S>> {
    const wasCached = this.cache.has(id);
    let loaded = await this.load(id);
    let verified = !wasCached;
    for (let attempt = 0; ; attempt++) {
      const decision = decide(loaded.state);
      if (!decision.ok || decision.events.length === 0) {
        // Nothing to append means no expected version checks the state we decided on. A cached copy
        // may be stale — an actor other workers write too (a ledger, shared by conversations of every
        // partition) may have moved on — or ahead of a stream that lost its tail (DivergedStateError):
        // check it against the stream's head once, and decide again if it was not the stream's — a
        // refusal (QUOTA_EXCEEDED) or a repeat's first answer must not come from a wrong copy. Rare
        // (refusals, repeats), so the accepted hot path reads nothing.
        if (!verified) {
          verified = true;
          const before = loaded;
          const [version, offset] = [loaded.version, loaded.offset];
          loaded = await this.verify(id, loaded);
          if (loaded !== before || loaded.version !== version || loaded.offset !== offset) continue;
        }
        return { decision, loaded };
      }
      try {
        const expected = loaded.version;
        // One meta object for the append's events: the store only reads it (encodes it per event).
        const eventMeta = { commandId, ...meta };
        const appended = await this.o.store.append(
          this.ref(id),
          expected,
          decision.events.map((ev) => ({ type: ev.type, data: ev.data, at, meta: eventMeta })),
          commandId,
          appendOptions(loaded.hash, opts.dedupeTtlMs),
        );
        if (appended.duplicate || loaded.version !== expected) {
          // Duplicate: the first delivery appended already (we crashed before acknowledging), and
          // our cached state may predate it. Moved: a fresh load outside the lock (a quota view)
          // caught this cached state up while our append was in flight, so it may already hold our
          // events — folding them again would count them twice. Either way, read back rather than
          // fold: catchUp skips what is already folded.
          loaded = await this.refresh(id, loaded);
        } else {
          if (decision.next !== undefined) {
            // The decider folded them already (Decision.next): take its state.
            loaded.state = decision.next as S;
            loaded.version = appended.toVersion;
            loaded.offset = appended.offsets[appended.offsets.length - 1] ?? loaded.offset;
            loaded.hash = appended.hash;
          } else {
            decision.events.forEach((ev, i) => {
              loaded.state = this.o.decider.evolve(loaded.state, ev);
              loaded.version = appended.fromVersion + i;
              loaded.offset = appended.offsets[i] ?? loaded.offset;
            });
            loaded.hash = appended.hash;
          }
          this.maybeSnapshot(id, loaded, decision.events.length);
        }
        return { decision, loaded, appended };
      } catch (e) {
        if (!(e instanceof VersionConflictError) || attempt >= this.maxRetries) throw e;
        // Someone else wrote (hand-over, or a ledger shared by workers): read what they appended
        // and decide again. Only the tail is read; should that fail (say, a gap), start over.
        // A stream *behind* the cached state lost events the cache holds, and one at its version
        // with another head (expectedHash) lost and rewrote them: start over from the stream.
        loaded = e.actual <= loaded.version ? await this.reload(id, loaded, `the stream is at v${e.actual}`) : await this.refresh(id, loaded);
      }
    }
  }

  /**
   * Bring a cached actor up to its stream's head (after a conflict, a duplicate, or for a fresh
   * read); rehydrate if that fails — a gap, or a stream that no longer continues the state.
   */
  private async refresh(id: string, loaded: Loaded<S>): Promise<Loaded<S>> {
    try {
      await this.catchUp(id, loaded);
      return loaded;
    } catch (e) {
      return this.reload(id, loaded, `tail read failed: ${errorMessage(e)}`);
    }
  }

  /**
   * The cached state against the stream's head (one HMGET): the same version and last offset is the
   * stream's state; a stream ahead is read up to; one behind, or at the version with another last
   * event, lost what the copy holds — rehydrate.
   */
  private async verify(id: string, loaded: Loaded<S>): Promise<Loaded<S>> {
    const head = await this.o.store.head(this.ref(id));
    if (head.version === loaded.version && (head.lastOffset ?? "0") === loaded.offset) return loaded;
    if (head.version > loaded.version) return this.refresh(id, loaded);
    return this.reload(id, loaded, `the stream is at v${head.version} (${head.lastOffset ?? "empty"})`);
  }

  /** Drop a cached state its stream contradicts and rehydrate (the caller holds the aggregate's lock). */
  private async reload(id: string, loaded: Loaded<S>, why: string): Promise<Loaded<S>> {
    this.o.log?.warn({ stream: id, version: loaded.version, why }, "cached state not its stream's; rehydrating");
    this.cache.delete(id);
    return this.load(id);
  }

  /**
   * Callers that answer from the cached state without appending (a repeated command's first answer)
   * and find the stream contradicts it: drop it, so that the next attempt decides on the stream.
   */
  invalidate(id: string, why: string): void {
    this.o.log?.warn({ stream: id, why }, "cached state contradicted by its stream; dropped");
    this.cache.delete(id);
  }

  /** The event with `version`, read through the history reader (archive + Redis). */
  async eventAtVersion(id: string, version: number): Promise<RecordedEvent | undefined> {
    for await (const e of this.history(id)) {
      if (e.version === version) return e;
      if (e.version > version) return undefined;
    }
    return undefined;
  }

  /** Every event of the stream, oldest first, through the history reader (archive + Redis), a page at a time. */
  async *history(id: string): AsyncGenerator<RecordedEvent> {
    let from = "0";
    for (;;) {
      const page = await this.reader.read(this.ref(id), { from, limit: PAGE });
      yield* page;
      if (page.length < PAGE) return;
      from = page[page.length - 1]?.offset ?? from;
    }
  }

  /** The event store this repository appends to (reads of single entries, e.g. createdAt). */
  get store(): EventStore {
    return this.o.store;
  }

  private maybeSnapshot(id: string, loaded: Loaded<S>, added: number): void {
    const every = this.snapshotEvery;
    if (Math.floor(loaded.version / every) === Math.floor((loaded.version - added) / every)) return;
    const snap: Snapshot = { version: loaded.version, offset: loaded.offset, state: this.o.decider.toSnapshot(loaded.state) };
    // Snapshots are an optimisation: a failure is logged and costs a longer fold later, nothing else.
    this.o.snapshots.put(this.ref(id), snap).catch((e: unknown) => {
      this.o.log?.warn({ err: errorMessage(e), stream: id }, "snapshot write failed");
    });
  }

  /** Drop an actor from memory (passivation, or after losing its partition). */
  evict(id: string): void {
    this.cache.delete(id);
  }

  /** Drop every cached actor whose id matches (e.g. all of a lost partition). */
  evictWhere(pred: (id: string) => boolean): void {
    for (const id of [...this.cache.keys()]) if (pred(id)) this.cache.delete(id);
  }

  /** Passivate actors idle for longer than `idleMs`. */
  passivate(idleMs: number): number {
    const cutoff = this.now() - idleMs;
    let n = 0;
    for (const [id, l] of this.cache) {
      if (l.lastUsed < cutoff && !this.locks.has(id)) {
        this.cache.delete(id);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.cache.size;
  }

  private touch(id: string, loaded: Loaded<S>): void {
    this.cache.delete(id);
    this.cache.set(id, loaded);
    // Trimmed in one pass once it is a little over its bound; actors in use (locked) stay.
    if (this.cache.size > this.cacheSize + this.slack) trimOldest(this.cache, this.cacheSize, (k) => this.locks.has(k));
  }
}

/** The store's AppendOptions for one execute: only what is set (the hot path allocates no more). */
function appendOptions(expectedHash: string | undefined, dedupeTtlMs: number | undefined): AppendOptions | undefined {
  if (dedupeTtlMs === undefined) return expectedHash === undefined ? undefined : { expectedHash };
  return expectedHash === undefined ? { dedupeTtlMs } : { expectedHash, dedupeTtlMs };
}
