import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileBlobStore } from "../../core/blob/index.js";
import { VersionConflictError } from "../../core/errors.js";
import type { EventStore } from "../../core/event-store.js";
import type { LedgerEvent } from "../../core/events/ledger.js";
import { createLogger } from "../../core/logger.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import { createArchiver } from "../../core/redis/archiver.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { ledgerDecider, type LedgerState } from "../../actors/ledger/decider.js";
import type { LedgerCommand } from "../../actors/ledger/commands.js";
import { AggregateRepository, blobSnapshotStore, metaSnapshotPointer, metaStreamProbe, noSnapshots } from "../../actors/runtime/index.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/**
 * The in-memory actor cache and the probe-first rehydration (actors/runtime/repository.ts,
 * stream-probe.ts) against the uncached path, on quota ledgers (where economics must stay exact).
 *
 * Two "workers" (repositories with the cache, the meta probe, snapshots every 3 events and the
 * archive-aware reader) run a random sequence of ledger commands, switching writer at random — so the
 * writer's cached state is often stale and its append meets a CONFLICT from the other's writes. The
 * sequence includes retries of earlier commands (same command id), lease hand-overs (a worker drops
 * its cache) and archive runs that trim Redis (the next first load must find the events in the
 * archive). The same commands run through a reference repository that keeps nothing between
 * commands, probes nothing and reads every load through the archive-aware reader: the streams must be
 * event-for-event equal, the folded states equal, and I8 (`used + reserved ≤ limit + topUp`) hold.
 */
const P = 2;
const log = createLogger("silent");
const BASE = Date.parse("2026-11-22T00:00:00.000Z");

type Cmd =
  | { type: "reserve"; rid: number; tokens: number }
  | { type: "commit"; rid: number; tokens: number }
  | { type: "release"; rid: number }
  | { type: "topUp"; tokens: number };

type Op =
  | { kind: "cmd"; worker: 0 | 1; ledger: 0 | 1; cmd: Cmd }
  | { kind: "retry"; worker: 0 | 1; pick: number }
  | { kind: "handover"; worker: 0 | 1 }
  | { kind: "archive" };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ type: fc.constant("reserve" as const), rid: fc.integer({ min: 0, max: 5 }), tokens: fc.integer({ min: 1, max: 90_000 }) }),
  fc.record({ type: fc.constant("commit" as const), rid: fc.integer({ min: 0, max: 5 }), tokens: fc.integer({ min: 0, max: 120_000 }) }),
  fc.record({ type: fc.constant("release" as const), rid: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ type: fc.constant("topUp" as const), tokens: fc.integer({ min: 1, max: 50_000 }) }),
);
const worker = fc.constantFrom(0 as const, 1 as const);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("cmd" as const), worker, ledger: fc.constantFrom(0 as const, 1 as const), cmd: cmdArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("retry" as const), worker, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("handover" as const), worker }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("archive" as const) }) },
);

function toCommand(c: Cmd, at: string): LedgerCommand {
  switch (c.type) {
    case "reserve":
      return { type: "reserve", at, reservationId: `r${c.rid}`, tokens: c.tokens, tier: "registered" };
    case "commit":
      return { type: "commit", at, reservationId: `r${c.rid}`, tokens: c.tokens, costMicros: c.tokens * 3 };
    case "release":
      return { type: "release", at, reservationId: `r${c.rid}` };
    case "topUp":
      return { type: "topUp", at, tokens: c.tokens };
  }
}

/** Counts the CONFLICTs the cached writers met, to show the property exercised that path. */
function countingConflicts(store: EventStore, counter: { conflicts: number }): EventStore {
  return {
    ...store,
    async append(ref, expected, events, commandId, opts) {
      try {
        return await store.append(ref, expected, events, commandId, opts);
      } catch (e) {
        if (e instanceof VersionConflictError) counter.conflicts++;
        throw e;
      }
    },
  };
}

describe("the actor cache and probe-first rehydration equal the uncached path", () => {
  let r: TestRedis;
  let dir: string;
  const seen = { conflicts: 0, archived: 0, probedEmpty: 0 };

  beforeAll(async () => {
    r = await testRedis("single");
    dir = mkdtempSync(join(tmpdir(), "tributary-cache-prop-"));
  });
  afterAll(async () => {
    await r?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("for random commands with retries, hand-overs, concurrent writers and archiving", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 24 }), async (ops) => {
        run++;
        const store = createRedisEventStore(r.client, { partitions: P, idemTtlMs: 600_000 });
        const blobs = createFileBlobStore(join(dir, String(run)));
        const reader = createArchivedEventReader(r.client, blobs, P);
        const probe = metaStreamProbe(r.client, P, { snapshots: true });
        const realProbe = { probe: async (ref: Parameters<typeof probe.probe>[0]) => {
          const f = await probe.probe(ref);
          if (f.version === 0) seen.probedEmpty++;
          return f;
        } };
        const cached = (): AggregateRepository<LedgerCommand, LedgerEvent, LedgerState> =>
          new AggregateRepository({
            kind: "ledger",
            decider: ledgerDecider,
            store: countingConflicts(store, seen),
            reader,
            probe: realProbe,
            snapshots: blobSnapshotStore(blobs, metaSnapshotPointer(r.client, P)),
            snapshotEvery: 3,
            log,
          });
        const workers = [cached(), cached()] as const;
        const reference = new AggregateRepository({ kind: "ledger", decider: ledgerDecider, store, reader, snapshots: noSnapshots, log });
        const ids = [0, 1].map((k) => `user:run${run}:l${k}`);
        const refIds = ids.map((id) => `${id}:ref`);
        const done: Array<{ ledger: number; commandId: string; command: LedgerCommand }> = [];

        const apply = async (w: 0 | 1, ledger: number, commandId: string, command: LedgerCommand) => {
          const a = await workers[w].execute(ids[ledger] as string, commandId, command.at, (s) => ledgerDecider.decide(command, s));
          const b = await reference.execute(refIds[ledger] as string, commandId, command.at, (s) => ledgerDecider.decide(command, s));
          reference.evict(refIds[ledger] as string); // the reference keeps nothing between commands
          // A retry decided on a stale copy may carry the events its first delivery appended (the
          // store answers the first result); otherwise the answer is the reference's, refusals too.
          if (a.appended?.duplicate) expect(a.decision.ok).toBe(b.decision.ok);
          else expect(a.decision).toEqual(b.decision);
        };

        for (const [i, op] of ops.entries()) {
          if (op.kind === "cmd") {
            const command = toCommand(op.cmd, new Date(BASE + i * 60_000).toISOString());
            const commandId = `c${i}`;
            done.push({ ledger: op.ledger, commandId, command });
            await apply(op.worker, op.ledger, commandId, command);
          } else if (op.kind === "retry") {
            const earlier = done[op.pick % Math.max(1, done.length)];
            if (earlier) await apply(op.worker, earlier.ledger, earlier.commandId, earlier.command);
          } else if (op.kind === "handover") {
            workers[op.worker].evictWhere(() => true); // lease lost: the next owner starts from the streams
          } else {
            await new Promise((res) => setTimeout(res, 3));
            const report = await createArchiver(r.client, blobs, { partitions: P, retentionMs: 0, log }).runOnce({ olderThanMs: 1 });
            seen.archived += report.trimmed;
            for (const w of workers) w.evictWhere(() => true); // so the next loads rehydrate past the trim
          }
        }

        for (const k of [0, 1]) {
          const mine = await reader.read({ kind: "ledger", id: ids[k] as string });
          const theirs = await reader.read({ kind: "ledger", id: refIds[k] as string });
          const shape = (evs: typeof mine) => evs.map((e) => ({ version: e.version, type: e.type, at: e.at, data: e.data, commandId: e.meta?.commandId }));
          expect(shape(mine)).toEqual(shape(theirs));
          // Each worker's view, cached or freshly caught up, is the reference's fold.
          const want = ledgerDecider.toSnapshot((await reference.rehydrate(refIds[k] as string)).state);
          for (const w of workers) {
            const got = await w.load(ids[k] as string, { fresh: true });
            expect(ledgerDecider.toSnapshot(got.state)).toEqual(want);
            const ctx = got.state.context;
            // I8: never more committed + reserved than the limit plus top-ups, in integer units.
            expect(Number.isSafeInteger(ctx.used) && Number.isSafeInteger(ctx.reserved)).toBe(true);
            if (ctx.limit !== null) expect(ctx.used + ctx.reserved).toBeLessThanOrEqual(ctx.limit + ctx.topUp);
          }
        }
      }),
      { numRuns: 60 },
    );
    // The runs went through the paths this property is about.
    expect(seen.conflicts).toBeGreaterThan(0);
    expect(seen.archived).toBeGreaterThan(0);
    expect(seen.probedEmpty).toBeGreaterThan(0);
  }, 240_000);
  const ledgerRepo = (store: EventStore, extra: { probe?: ReturnType<typeof metaStreamProbe>; reader?: ReturnType<typeof createArchivedEventReader> } = {}) =>
    new AggregateRepository({ kind: "ledger", decider: ledgerDecider, store, snapshots: noSnapshots, log, ...extra });

  it("does not refuse from a stale copy: a reserve refused on the cached state is decided again on the stream's", async () => {
    const store = createRedisEventStore(r.client, { partitions: P, idemTtlMs: 600_000 });
    const [w0, w1] = [ledgerRepo(store), ledgerRepo(store)];
    const id = "user:stale:refusal";
    const at = new Date(BASE).toISOString();
    const reserve = (rid: string, tokens: number): LedgerCommand => ({ type: "reserve", at, reservationId: rid, tokens, tier: "registered" });
    expect((await w0.execute(id, "a", at, (s) => ledgerDecider.decide(reserve("r0", 150_000), s))).decision.ok).toBe(true);
    // Another worker releases r0; w0's cached copy still holds 150,000 tokens reserved.
    await w1.execute(id, "b", at, (s) => ledgerDecider.decide({ type: "release", at, reservationId: "r0" }, s));
    const second = await w0.execute(id, "c", at, (s) => ledgerDecider.decide(reserve("r1", 150_000), s));
    expect(second.decision.ok).toBe(true);
    expect(second.loaded.state.context.reserved).toBe(150_000);
  });

  it("finds the events in the archive when Redis was trimmed past everything (probe says version N, XRANGE says nothing)", async () => {
    const store = createRedisEventStore(r.client, { partitions: P, idemTtlMs: 600_000 });
    const blobs = createFileBlobStore(join(dir, "trimmed"));
    const reader = createArchivedEventReader(r.client, blobs, P);
    const id = "user:trimmed:all";
    const at = new Date(BASE).toISOString();
    const w = ledgerRepo(store);
    await w.execute(id, "a", at, (s) => ledgerDecider.decide({ type: "reserve", at, reservationId: "r0", tokens: 10, tier: "registered" }, s));
    await w.execute(id, "b", at, (s) => ledgerDecider.decide({ type: "commit", at, reservationId: "r0", tokens: 7, costMicros: 21 }, s));
    await new Promise((res) => setTimeout(res, 3));
    const report = await createArchiver(r.client, blobs, { partitions: P, retentionMs: 0, log }).runOnce({ olderThanMs: 1 });
    expect(report.trimmed).toBeGreaterThan(0);
    expect(await store.read({ kind: "ledger", id })).toEqual([]);
    const fresh = await ledgerRepo(store, { reader, probe: metaStreamProbe(r.client, P, { snapshots: false }) }).load(id);
    expect(fresh.version).toBe(4);
    expect(fresh.state.context.used).toBe(7);
  });
  it("never folds an append twice when a fresh load (a quota view, outside the lock) caught the cache up meanwhile", async () => {
    const store = createRedisEventStore(r.client, { partitions: P, idemTtlMs: 600_000 });
    let repo: AggregateRepository<LedgerCommand, LedgerEvent, LedgerState> | undefined;
    const id = "user:view:race";
    let raced = 0;
    // The append lands in Redis; before its answer reaches the writer, a reader catches the cached
    // state up (as LedgerPort.view does with load(id, {fresh: true})).
    const racing: EventStore = {
      ...store,
      async append(ref, expected, events, commandId, opts) {
        const res = await store.append(ref, expected, events, commandId, opts);
        if (commandId.startsWith("commit")) {
          await repo?.load(id, { fresh: true });
          raced++;
        }
        return res;
      },
    };
    repo = ledgerRepo(racing);
    const at = new Date(BASE).toISOString();
    await repo.execute(id, "reserve", at, (s) => ledgerDecider.decide({ type: "reserve", at, reservationId: "r0", tokens: 100, tier: "registered" }, s));
    const done = await repo.execute(id, "commit", at, (s) => ledgerDecider.decide({ type: "commit", at, reservationId: "r0", tokens: 11, costMicros: 33 }, s));
    expect(raced).toBe(1);
    expect(done.loaded.state.context.used).toBe(11);
    expect(done.loaded.state.context.reserved).toBe(0);
    const want = await ledgerRepo(store).load(id);
    expect(ledgerDecider.toSnapshot(done.loaded.state)).toEqual(ledgerDecider.toSnapshot(want.state));
  });
});
