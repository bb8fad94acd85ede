import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareOffsets } from "../../core/envelope.js";
import type { EventStore } from "../../core/event-store.js";
import { keys, streamKeys, type StreamRef } from "../../core/keys.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

/**
 * Entry ids of the append script (docs/event-store.md, "Entry ids"), on a single Redis and on the
 * 3-master cluster: concurrent appends to many streams of many partitions, from several writers
 * (stores on their own connections, like worker processes), never produce the same offset twice;
 * offsets within a stream strictly increase; an id's seq tells its partition (seq mod P = p).
 */
const PARTITIONS = 8;
const at = "2026-11-22T00:00:00.000Z";

const planArb = fc.record({
  streams: fc.integer({ min: 2, max: 24 }),
  writers: fc.integer({ min: 1, max: 3 }),
  // Per append: which stream, how many events (a batch takes several ids in one call).
  appends: fc.array(fc.record({ stream: fc.nat(), size: fc.integer({ min: 1, max: 3 }) }), { minLength: 1, maxLength: 60 }),
});

describe.each(REDIS_MODES)("event store entry ids (%s)", (mode) => {
  let r: TestRedis;
  let stores: EventStore[];
  beforeAll(async () => {
    r = await testRedis(mode);
    stores = [r.client, r.duplicate(), r.duplicate()].map((c) => createRedisEventStore(c, { partitions: PARTITIONS, idemTtlMs: 60_000 }));
  });
  afterAll(() => r.cleanup());

  it("concurrent appends to many streams and partitions: every offset unique, strictly increasing per stream", async () => {
    const partitionsSeen = new Set<number>();
    let sameMs = 0;
    await fc.assert(
      fc.asyncProperty(planArb, async (plan) => {
        const streams: StreamRef[] = Array.from({ length: plan.streams }, () => ({ kind: "conversation", id: `u-${randomUUID()}` }));
        for (const s of streams) partitionsSeen.add(streamKeys(s, PARTITIONS).partition);
        // One writer per stream (I3): each stream's appends run in order, all streams at once.
        const perStream = new Map<number, number[]>();
        for (const a of plan.appends) {
          const i = a.stream % plan.streams;
          perStream.set(i, [...(perStream.get(i) ?? []), a.size]);
        }
        const offsets = new Map<number, string[]>();
        await Promise.all(
          [...perStream].map(async ([i, sizes]) => {
            const store = stores[i % plan.writers] as EventStore;
            const got: string[] = [];
            let version = 0;
            for (const [n, size] of sizes.entries()) {
              const events = Array.from({ length: size }, (_, j) => ({ type: "t", data: { n, j }, at }));
              const res = await store.append(streams[i] as StreamRef, version, events, `c-${n}`);
              expect(res.offsets.length).toBe(size);
              got.push(...res.offsets);
              version = res.toVersion;
            }
            offsets.set(i, got);
          }),
        );
        const all = [...offsets.values()].flat();
        expect(new Set(all).size).toBe(all.length);
        const byMs = new Map<string, number>();
        for (const o of all) byMs.set(o.split("-")[0] as string, (byMs.get(o.split("-")[0] as string) ?? 0) + 1);
        sameMs += [...byMs.values()].filter((n) => n > 1).length;
        for (const [i, got] of offsets) {
          const ref = streams[i] as StreamRef;
          const p = streamKeys(ref, PARTITIONS).partition;
          for (let k = 1; k < got.length; k++) expect(compareOffsets(got[k - 1] as string, got[k] as string)).toBe(-1);
          for (const o of got) expect(BigInt(o.split("-")[1] as string) % BigInt(PARTITIONS)).toBe(BigInt(p));
          // The stored entries carry exactly the offsets the appends answered, and meta.last the newest.
          expect((await stores[0]?.read(ref))?.map((e) => e.offset)).toEqual(got);
          expect((await stores[0]?.head(ref))?.lastOffset).toBe(got.at(-1));
        }
      }),
      { numRuns: 25 },
    );
    // The runs did what the property is about: many partitions, and events sharing a millisecond.
    expect(partitionsSeen.size).toBe(PARTITIONS);
    expect(sameMs).toBeGreaterThan(0);
  });

  it("stays past a stream's ids written before this scheme, and past a partition clock ahead of TIME", async () => {
    const store = stores[0] as EventStore;
    const ref: StreamRef = { kind: "conversation", id: `legacy-${randomUUID()}` };
    const sk = streamKeys(ref, PARTITIONS);
    const first = await store.append(ref, 0, [{ type: "t", data: {}, at }], "c-0");
    // Simulate an entry written by the old `*` script a little in the future with a large seq.
    const ms = Number((first.offsets[0] as string).split("-")[0]) + 60_000;
    const legacySeq = PARTITIONS * 3 + 5;
    const legacy = `${ms}-${legacySeq}`;
    // The smallest k whose id k·P + p is past the legacy seq.
    let k = 0;
    while (k * PARTITIONS + sk.partition <= legacySeq) k++;
    await r.client.xadd(sk.stream, legacy, "e", "x", "h", "y");
    await r.client.hset(sk.meta, "last", legacy);
    const after = await store.append(ref, 1, [{ type: "t", data: {}, at }, { type: "t", data: {}, at }], "c-1");
    expect(compareOffsets(after.offsets[0] as string, legacy)).toBe(1);
    expect(after.offsets[0]).toBe(`${ms}-${PARTITIONS * k + sk.partition}`);
    expect(after.offsets[1]).toBe(`${ms}-${PARTITIONS * (k + 1) + sk.partition}`);

    // Another stream of the same partition now follows the partition's clock (ms, k), not TIME.
    let other: StreamRef;
    do other = { kind: "conversation", id: `same-p-${randomUUID()}` };
    while (streamKeys(other, PARTITIONS).partition !== sk.partition);
    const o = await store.append(other, 0, [{ type: "t", data: {}, at }], "c-0");
    expect(o.offsets[0]).toBe(`${ms}-${PARTITIONS * (k + 2) + sk.partition}`);
    expect(await r.client.get(keys.idseq(sk.partition))).toBe(`${ms}:${k + 2}`);
  });
});
