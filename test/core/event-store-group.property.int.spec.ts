import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditStream } from "../../core/audit/walker.js";
import { compareOffsets, type NewEvent } from "../../core/envelope.js";
import { VersionConflictError } from "../../core/errors.js";
import type { AppendResult } from "../../core/event-store.js";
import { streamKeys, type StreamRef } from "../../core/keys.js";
import { createRedisEntrySource, type RedisEntrySource } from "../../core/redis/entry-source.js";
import { createRedisEventStore, type RedisEventStore } from "../../core/redis/event-store.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";
import { conversationInPartition } from "../support/streams.js";

/**
 * I2 through group commit, as properties, on a single Redis and on the 3-master cluster.
 *
 * 1. Rounds of concurrent appends (issued in one tick, so they are grouped per partition) to many
 *    streams of the same and of different partitions, with fresh, stale and future expected
 *    versions and retried command ids: per-stream versions 1..n without gaps, every accepted append
 *    present exactly once, refused ones absent, a command id never appended twice, duplicates
 *    answer the first result, the chain audits, every offset unique.
 * 2. Equivalence: a burst of appends answered in one group call — to one partition, or to streams of
 *    several partitions (one call on a single Redis, one per partition on a cluster) — gets exactly
 *    the outcomes (appended at which versions / duplicate of what / CONFLICT with which actual
 *    version) that the same appends get one by one, in the same order, without group commit.
 */
const PARTITIONS = 4;
const at = "2026-11-22T00:00:00.000Z";

const convIn = (p: number): StreamRef => conversationInPartition(p, PARTITIONS, "gp");

type Outcome = AppendResult | "conflict";

const opArb = fc.record({
  stream: fc.nat({ max: 11 }),
  /** 0 = the head as read at the start of the round; k > 0 = k versions behind; -1 = one ahead. */
  staleness: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -1, max: 2 }) }),
  size: fc.integer({ min: 1, max: 3 }),
  retryOf: fc.option(fc.nat({ max: 40 }), { freq: 3 }),
});
const roundsArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 24 }), { minLength: 1, maxLength: 4 });

describe.each(REDIS_MODES)("event store group commit properties (%s)", (mode) => {
  let r: TestRedis;
  let store: RedisEventStore;
  let source: RedisEntrySource;
  beforeAll(async () => {
    r = await testRedis(mode);
    store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
    source = createRedisEntrySource(r.client, PARTITIONS, 9);
  });
  afterAll(() => r.cleanup());

  it("concurrent grouped appends: versions without gaps, accepted exactly once, refused never, retries never twice, offsets unique, audit ok", async () => {
    const seen = { accepted: 0, conflicts: 0, duplicates: 0 };
    const calls0 = { ...(store.groupCommitStats ?? { calls: 0, items: 0, largest: 0 }) };
    await fc.assert(
      fc.asyncProperty(roundsArb, async (rounds) => {
        // 12 streams: 6 in partition 0 (crowded), the rest spread over the others.
        const streams: StreamRef[] = [0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 1].map(convIn);
        const issued: Array<{ stream: number; size: number; commandId: string; tag: string; outcome?: Outcome }> = [];
        let seq = 0;
        for (const round of rounds) {
          const heads = await Promise.all(streams.map((s) => store.head(s)));
          // No await between the appends of a round: each partition's appends are grouped.
          const launched = round.map((op) => {
            const earlier = op.retryOf === null ? [] : issued.filter((x) => x.stream === op.stream);
            const retried = op.retryOf !== null && earlier.length > 0 ? earlier[op.retryOf % earlier.length] : undefined;
            const commandId = retried?.commandId ?? `cmd-${seq}`;
            const tag = `op-${seq++}`;
            const rec: (typeof issued)[number] = { stream: op.stream, size: op.size, commandId, tag };
            issued.push(rec);
            const expected = Math.max(0, (heads[op.stream]?.version ?? 0) - op.staleness);
            const events: NewEvent[] = Array.from({ length: op.size }, (_, i) => ({ type: "t", data: { tag, i }, at }));
            return store.append(streams[op.stream] as StreamRef, expected, events, commandId).then(
              (res) => {
                rec.outcome = res;
              },
              (e: unknown) => {
                if (!(e instanceof VersionConflictError)) throw e;
                rec.outcome = "conflict";
              },
            );
          });
          await Promise.all(launched);
        }

        const allOffsets: string[] = [];
        for (const [si, s] of streams.entries()) {
          const events = await store.read(s);
          expect(events.map((e) => e.version)).toEqual(events.map((_, i) => i + 1));
          for (let k = 1; k < events.length; k++) expect(compareOffsets(events[k - 1]?.offset ?? "", events[k]?.offset ?? "")).toBe(-1);
          allOffsets.push(...events.map((e) => e.offset));
          const count = new Map<string, number>();
          for (const e of events) {
            const tag = (e.data as { tag: string }).tag;
            count.set(tag, (count.get(tag) ?? 0) + 1);
          }
          const mine = issued.filter((x) => x.stream === si);
          const firstByCommand = new Map<string, AppendResult>();
          for (const x of mine) {
            const o = x.outcome;
            expect(o).toBeDefined();
            if (o === "conflict") {
              seen.conflicts += 1;
              expect(count.get(x.tag)).toBeUndefined();
            } else if (o && !o.duplicate) {
              seen.accepted += 1;
              expect(count.get(x.tag)).toBe(x.size);
              expect(firstByCommand.has(x.commandId)).toBe(false); // a command id never appends twice
              firstByCommand.set(x.commandId, o);
              const got = events.slice(o.fromVersion - 1, o.toVersion);
              expect(got.map((e) => e.offset)).toEqual(o.offsets);
              expect(got.at(-1)?.hash).toBe(o.hash);
              expect(got.every((e) => (e.data as { tag: string }).tag === x.tag)).toBe(true);
            }
          }
          for (const x of mine) {
            const o = x.outcome;
            if (o && o !== "conflict" && o.duplicate) {
              seen.duplicates += 1;
              expect(count.get(x.tag)).toBeUndefined();
              expect(o).toEqual({ ...firstByCommand.get(x.commandId), duplicate: true });
            }
          }
          const accepted = [...firstByCommand.values()].reduce((n, o) => n + o.toVersion - o.fromVersion + 1, 0);
          expect(events.length).toBe(accepted);
          const audit = await auditStream({ ref: s, key: source.keyOf(s) }, { live: source, head: source.head });
          expect(audit.break).toBeUndefined();
          expect(audit.events).toBe(events.length);
          // seq mod P is the stream's partition (ids stay unique across partitions).
          const p = BigInt(streamKeys(s, PARTITIONS).partition);
          for (const e of events) expect(BigInt(e.offset.split("-")[1] as string) % BigInt(PARTITIONS)).toBe(p);
        }
        expect(new Set(allOffsets).size).toBe(allOffsets.length);
      }),
      { numRuns: 30 },
    );
    expect(seen.accepted).toBeGreaterThan(0);
    expect(seen.conflicts).toBeGreaterThan(0);
    expect(seen.duplicates).toBeGreaterThan(0);
    // The appends really went through group commit, and calls did carry several appends.
    const stats = store.groupCommitStats;
    expect(stats).toBeDefined();
    expect((stats?.items ?? 0) - calls0.items).toBeGreaterThan((stats?.calls ?? 0) - calls0.calls);
    expect(stats?.largest).toBeGreaterThan(1);
  });

  // One partition: a single call in both modes. Mixed partitions: on a single Redis still ONE call
  // (appends of different partitions share it), on a cluster one call per partition.
  it.each([
    { name: "one partition", spread: false },
    { name: "mixed partitions", spread: true },
  ])("a group call ($name) answers exactly what the same appends answer one by one without group commit", async ({ spread }) => {
    const alone = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000, groupCommit: false });
    const burstArb = fc.record({
      // Versions the streams start at (appended beforehand, so each store's cache knows them).
      seeds: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 2, maxLength: 5 }),
      ops: fc.array(
        fc.record({
          stream: fc.nat({ max: 4 }),
          // The seed version (fresh unless an earlier op of the burst moved the stream) or 0.
          fromSeed: fc.boolean(),
          command: fc.nat({ max: 3 }),
          size: fc.integer({ min: 1, max: 2 }),
        }),
        { minLength: 1, maxLength: 20 },
      ),
    });
    const shape = (o: AppendResult | Error): unknown => {
      if (o instanceof VersionConflictError) return { conflict: o.actual };
      if (o instanceof Error) return { error: o.message };
      return { duplicate: o.duplicate, from: o.fromVersion, to: o.toVersion, n: o.offsets.length };
    };
    await fc.assert(
      fc.asyncProperty(burstArb, async ({ seeds, ops }) => {
        const run = async (s: RedisEventStore, grouped: boolean): Promise<unknown[]> => {
          const streams = seeds.map((_, i) => convIn(spread ? i % PARTITIONS : 1));
          for (const [i, v] of seeds.entries()) {
            for (let k = 0; k < v; k++) await s.append(streams[i] as StreamRef, k, [{ type: "seed", data: {}, at }], `seed-${k}`);
          }
          const one = (op: (typeof ops)[number]): Promise<AppendResult | Error> => {
            const i = op.stream % seeds.length;
            const events = Array.from({ length: op.size }, (_, j) => ({ type: "t", data: { j }, at }));
            return s.append(streams[i] as StreamRef, op.fromSeed ? (seeds[i] as number) : 0, events, `c${op.command}`).catch((e: unknown) => e as Error);
          };
          if (grouped) {
            const calls = s.groupCommitStats?.calls ?? 0;
            const out = await Promise.all(ops.map(one));
            // Per group (a partition on a cluster, everything on a single Redis): one call, or — on a
            // single Redis, whose default is two in flight — two equal ones when the burst fills
            // both slots (at least 4 appends each).
            const perGroup = new Map<number, number>();
            for (const op of ops) {
              const g = mode === "cluster" ? (spread ? (op.stream % seeds.length) % PARTITIONS : 1) : 0;
              perGroup.set(g, (perGroup.get(g) ?? 0) + 1);
            }
            const expected = [...perGroup.values()].reduce((n, k) => n + (mode === "single" && k >= 8 ? 2 : 1), 0);
            expect((s.groupCommitStats?.calls ?? 0) - calls).toBe(expected);
            return out.map(shape);
          }
          const out: unknown[] = [];
          for (const op of ops) out.push(shape(await one(op)));
          return out;
        };
        expect(await run(store, true)).toEqual(await run(alone, false));
      }),
      { numRuns: 40 },
    );
  });
});
