import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArchiveIntegrityError, segmentKey, streamArchivePrefix } from "../../core/archive/manifest.js";
import { encodeSegment } from "../../core/archive/segment.js";
import type { BlobStore } from "../../core/blob/blob-store.js";
import { createFileBlobStore } from "../../core/blob/file-store.js";
import { GENESIS_HASH, chainHash } from "../../core/chain.js";
import { decodeEvent, encodeEvent } from "../../core/codec.js";
import type { RecordedEvent } from "../../core/envelope.js";
import type { EventStore } from "../../core/event-store.js";
import { streamKeys, type StreamRef } from "../../core/keys.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import { createArchiver, type ArchiveStep } from "../../core/redis/archiver.js";
import { startArchiverRole } from "../../core/redis/archiver-role.js";
import { recoverArchiveIndex } from "../../core/redis/archive-recovery.js";
import { collectLogOrphans, createArchivedLogSource, logArchiveSegments } from "../../core/redis/log-archive.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { testRedis, type RedisMode, type TestRedis } from "../support/redis.js";
import { testS3Bucket } from "../support/s3.js";

const PARTITIONS = 4;

interface Combo {
  redis: RedisMode;
  blob: "file" | "s3";
}
// Every archive behaviour on a single Redis with both blob stores, and on the Cluster.
const combos: Combo[] = [
  { redis: "single", blob: "file" },
  { redis: "single", blob: "s3" },
  { redis: "cluster", blob: "file" },
];

class Crash extends Error {}

describe.each(combos)("archive ($redis Redis, $blob blobs)", (combo) => {
  let r: TestRedis;
  let blob: BlobStore;
  let closeBlob: () => Promise<void>;
  let store: EventStore;

  beforeAll(async () => {
    r = await testRedis(combo.redis);
    if (combo.blob === "s3") {
      const s3 = await testS3Bucket();
      blob = s3.store;
      closeBlob = () => s3.cleanup();
    } else {
      const dir = await mkdtemp(join(tmpdir(), "tributary-archive-"));
      blob = createFileBlobStore(dir);
      closeBlob = () => rm(dir, { recursive: true, force: true });
    }
    store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
  });
  afterAll(async () => {
    await r.cleanup();
    await closeBlob();
  });

  const newRef = (): StreamRef => ({ kind: "conversation", id: `c-${randomUUID()}` });

  /** Append `n` events in batches of 1..4 (several share a millisecond, exercising "ms-seq" cut points). */
  async function appendEvents(ref: StreamRef, n: number, startVersion = 0): Promise<void> {
    let v = startVersion;
    let i = 0;
    while (i < n) {
      const size = Math.min(n - i, 1 + (i % 4));
      const events = Array.from({ length: size }, (_, j) => ({
        type: "assistant.delta",
        at: new Date().toISOString(),
        data: { messageId: "m1", index: i + j, text: `token ${i + j} `.repeat(1 + ((i + j) % 3)) },
      }));
      await store.append(ref, v, events, `cmd-${v}`);
      v += size;
      i += size;
    }
  }

  const strip = (events: RecordedEvent[]) => events.map((e) => ({ ...e }));

  /** Chain from genesis over everything readable, and the meta head still matches. */
  async function verifyChain(ref: StreamRef, events: RecordedEvent[]): Promise<void> {
    const reader = createArchivedEventReader(r.client, blob, PARTITIONS);
    let prev = GENESIS_HASH;
    const entries = await reader.readEntries(ref);
    expect(entries.length).toBe(events.length);
    entries.forEach((en, i) => {
      expect(decodeEvent(en.bytes).version).toBe(i + 1);
      prev = chainHash(prev, en.bytes);
      expect(en.hash).toBe(prev);
    });
    const head = await store.head(ref);
    expect(head.hash).toBe(prev);
    expect(head.version).toBe(events.length);
  }

  it("archives old events, trims Redis, and reads archive + Redis as the original sequence", async () => {
    const ref = newRef();
    await appendEvents(ref, 40);
    const original = await store.read(ref);
    const cut = original[25]?.offset as string;
    const archiver = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 10 });
    const res = await archiver.archiveStream(ref, cut);
    expect(res).toMatchObject({ segments: 3, events: 25, trimmed: 25 });
    // Redis keeps only the recent part; the meta (version, head) is untouched.
    expect((await store.read(ref)).map((e) => e.version)).toEqual(original.slice(25).map((e) => e.version));
    expect((await store.head(ref)).version).toBe(40);
    const segs = await archiver.index.segments(ref);
    expect(segs.map((s) => [s.firstVersion, s.lastVersion])).toEqual([
      [1, 10],
      [11, 20],
      [21, 25],
    ]);
    const reader = createArchivedEventReader(r.client, blob, PARTITIONS);
    expect(strip(await reader.read(ref))).toEqual(strip(original));
    // Appends continue the chain after trimming.
    await appendEvents(ref, 5, 40);
    const all = await reader.read(ref);
    expect(all.map((e) => e.version)).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
    await verifyChain(ref, all);
    // Archiving again is a no-op below the same cut, and continues above a later one.
    expect(await archiver.archiveStream(ref, cut)).toMatchObject({ segments: 0, events: 0 });
    const cut2 = all[41]?.offset as string;
    expect(await archiver.archiveStream(ref, cut2)).toMatchObject({ segments: 2, events: 16 });
    expect(strip(await reader.read(ref))).toEqual(strip(all));
  });

  it("runOnce finds streams by SCAN and archives what is older than the retention", async () => {
    const refs = [newRef(), newRef(), newRef()];
    for (const ref of refs) await appendEvents(ref, 12);
    const originals = await Promise.all(refs.map((ref) => store.read(ref)));
    const latest = Math.max(...originals.flat().map((e) => Number(e.offset.split("-")[0])));
    // A clock far enough ahead that everything is older than the retention.
    const archiver = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 60_000, maxSegmentEvents: 5, now: () => latest + 60_001 });
    const report = await archiver.runOnce();
    expect(report.failures).toEqual([]);
    expect(report.streams).toBeGreaterThanOrEqual(3);
    const reader = createArchivedEventReader(r.client, blob, PARTITIONS);
    for (const [i, ref] of refs.entries()) {
      expect(await r.client.xlen(streamKeys(ref, PARTITIONS).stream)).toBe(0);
      expect(strip(await reader.read(ref))).toEqual(strip(originals[i] ?? []));
    }
    // With the real clock nothing is old enough.
    const now = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 3_600_000 });
    const fresh = newRef();
    await appendEvents(fresh, 3);
    await now.runOnce();
    expect(await r.client.xlen(streamKeys(fresh, PARTITIONS).stream)).toBe(3);
  });

  it("survives a crash at every step boundary: nothing lost, nothing trimmed unarchived, chain intact", async () => {
    let boundaries = 0;
    for (let n = 1; n < 200; n++) {
      const ref = newRef();
      await appendEvents(ref, 22);
      const original = await store.read(ref);
      // A first archive round, so that the crashing run starts from an existing index.
      await createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 4 }).archiveStream(ref, original[5]?.offset as string);
      let calls = 0;
      const seen: ArchiveStep[] = [];
      const crashing = createArchiver(r.client, blob, {
        partitions: PARTITIONS,
        retentionMs: 0,
        maxSegmentEvents: 4,
        faults: {
          at(step) {
            calls += 1;
            seen.push(step);
            if (calls === n) throw new Crash(`crash at ${step} (#${n})`);
          },
        },
      });
      const cut = original[17]?.offset as string;
      let crashed = false;
      try {
        await crashing.archiveStream(ref, cut);
      } catch (e) {
        if (!(e instanceof Crash)) throw e;
        crashed = true;
      }
      const reader = createArchivedEventReader(r.client, blob, PARTITIONS);
      // At the instant of the crash, reads already see the whole history.
      expect(strip(await reader.read(ref))).toEqual(strip(original));
      // Never trimmed unarchived: every version after the archive's end is still in Redis.
      const segs = await crashing.index.segments(ref);
      const archivedTo = segs[segs.length - 1]?.lastVersion ?? 0;
      const inRedis = new Set((await store.read(ref)).map((e) => e.version));
      for (let v = archivedTo + 1; v <= original.length; v++) expect(inRedis.has(v), `version ${v}`).toBe(true);
      // Restart: the rerun completes the work.
      await createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 4 }).archiveStream(ref, cut);
      expect((await store.read(ref)).map((e) => e.version)).toEqual(original.slice(17).map((e) => e.version));
      expect(strip(await reader.read(ref))).toEqual(strip(original));
      await verifyChain(ref, original);
      if (!crashed) {
        boundaries = n - 1;
        expect(new Set(seen)).toEqual(new Set<ArchiveStep>(["trimmed", "read", "encoded", "stored", "recorded"]));
        break;
      }
    }
    // 3 segments × (encoded, stored, recorded, trimmed) + reads + the initial trim check.
    expect(boundaries).toBeGreaterThanOrEqual(14);
  });

  it("replay across the archive boundary equals replay of the never-archived stream (any cut points)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 30 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 30 }), { maxLength: 3 }),
        fc.integer({ min: 1, max: 7 }),
        fc.record({ from: fc.integer({ min: -1, max: 30 }), to: fc.integer({ min: -1, max: 31 }), limit: fc.option(fc.integer({ min: 1, max: 12 })), pageSize: fc.integer({ min: 1, max: 9 }) }),
        async (n, cuts, maxSegmentEvents, q) => {
          const ref = newRef();
          await appendEvents(ref, n);
          const original = await store.read(ref);
          const archiver = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents });
          for (const c of [...cuts].sort((a, b) => a - b)) {
            const cut = c >= n ? `${Number((original[n - 1]?.offset ?? "0-0").split("-")[0]) + 1}-0` : (original[c]?.offset as string);
            await archiver.archiveStream(ref, cut);
          }
          const reader = createArchivedEventReader(r.client, blob, PARTITIONS, { pageSize: 3 });
          expect(strip(await reader.read(ref))).toEqual(strip(original));
          // Any window: from (exclusive) / to (inclusive) / limit, and the paged iteration.
          const from = q.from < 0 || q.from >= n ? undefined : original[q.from]?.offset;
          const to = q.to < 0 || q.to >= n ? undefined : original[q.to]?.offset;
          const fromIdx = q.from < 0 || q.from >= n ? -1 : q.from;
          const toIdx = q.to < 0 || q.to >= n ? n - 1 : q.to;
          let expected = original.slice(fromIdx + 1, Math.max(fromIdx + 1, toIdx + 1));
          const opts = { ...(from ? { from } : {}), ...(to ? { to } : {}) };
          const iterated: RecordedEvent[] = [];
          for await (const e of reader.events(ref, { ...opts, pageSize: q.pageSize })) iterated.push(e);
          expect(strip(iterated)).toEqual(strip(expected));
          if (q.limit !== null) expected = expected.slice(0, q.limit);
          expect(strip(await reader.read(ref, { ...opts, ...(q.limit !== null ? { limit: q.limit } : {}) }))).toEqual(strip(expected));
        },
      ),
      { numRuns: combo.redis === "cluster" ? 15 : 25 },
    );
  });

  it("detects a tampered segment: a flipped byte by checksum, a recomputed rewrite by its anchors", async () => {
    const ref = newRef();
    await appendEvents(ref, 12);
    const original = await store.read(ref);
    const archiver = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 6 });
    await archiver.archiveStream(ref, original[10]?.offset as string);
    const [seg] = await archiver.index.segments(ref);
    if (!seg) throw new Error("no segment");
    const honest = (await blob.get(seg.key)) as Buffer;

    const flipped = Buffer.from(honest);
    const mid = Math.floor(flipped.length / 2);
    flipped[mid] = (flipped[mid] as number) ^ 0x40;
    await blob.put(seg.key, flipped);
    await expect(createArchivedEventReader(r.client, blob, PARTITIONS).read(ref)).rejects.toThrow(/checksum mismatch/);

    // A forger rewrites event 3 and recomputes the chain inside the segment and its checksum.
    await blob.put(seg.key, honest);
    const reader = createArchivedEventReader(r.client, blob, PARTITIONS, { cacheSegments: 0 });
    const real = (await reader.readEntries(ref)).slice(0, seg.count);
    let prev = GENESIS_HASH;
    const forged = real.map((en, i) => {
      const rec = decodeEvent(en.bytes);
      const bytes = i === 2 ? encodeEvent({ ...rec, data: { messageId: "m1", index: 2, text: "forged" } }) : Buffer.from(en.bytes);
      prev = chainHash(prev, bytes);
      return { offset: en.offset, bytes, hash: prev };
    });
    const forgedSeg = await encodeSegment(ref, forged, { prevHash: GENESIS_HASH, firstVersion: 1 });
    await blob.put(seg.key, forgedSeg.bytes);
    await expect(reader.read(ref)).rejects.toThrow(/checksum mismatch/);
    // Even with the forger's checksum also written into the index, the chain anchor gives it away.
    const idxKey = archiver.index.key(ref);
    await r.client.zrem(idxKey, JSON.stringify(seg));
    await r.client.zadd(idxKey, seg.lastVersion, JSON.stringify({ ...seg, sha256: forgedSeg.manifest.sha256, size: forgedSeg.manifest.size }));
    await expect(reader.read(ref)).rejects.toThrow(/last hash differs from its anchor/);
    // A deleted segment is an error, never a silent gap.
    await blob.delete(seg.key);
    await expect(reader.read(ref)).rejects.toThrow(/missing/);
    // Reads that start after the damaged segment still work.
    expect((await reader.read(ref, { from: original[5]?.offset as string })).map((e) => e.version)).toEqual([7, 8, 9, 10, 11, 12]);
  });

  it("reads stay gap-free and duplicate-free while appends, archiving and trimming run concurrently", async () => {
    const ref = newRef();
    await appendEvents(ref, 10);
    let appended = 10;
    const writer = (async () => {
      for (let round = 0; round < 15; round++) {
        await appendEvents(ref, 4, appended);
        appended += 4;
      }
    })();
    const archiverLoop = (async () => {
      const a = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 3 });
      for (let i = 0; i < 15; i++) {
        const tail = await store.read(ref);
        const last = tail[tail.length - 1];
        if (last) await a.archiveStream(ref, last.offset);
      }
    })();
    const readerLoop = (async () => {
      const reader = createArchivedEventReader(r.client, blob, PARTITIONS, { pageSize: 2, cacheSegments: 64 });
      for (let i = 0; i < 30; i++) {
        const all = await reader.read(ref);
        expect(all.map((e) => e.version)).toEqual(Array.from({ length: all.length }, (_, j) => j + 1));
        const mid = all[Math.floor(all.length / 2)];
        if (mid) {
          const rest = await reader.read(ref, { from: mid.offset, limit: 7 });
          expect(rest.map((e) => e.version)).toEqual(Array.from({ length: rest.length }, (_, j) => mid.version + 1 + j));
        }
      }
    })();
    await Promise.all([writer, archiverLoop, readerLoop]);
    const all = await createArchivedEventReader(r.client, blob, PARTITIONS).read(ref);
    expect(all.length).toBe(appended);
    await verifyChain(ref, all);
  });

  it("two archivers racing on one stream never leave a gap or an overlap", async () => {
    const ref = newRef();
    await appendEvents(ref, 30);
    const original = await store.read(ref);
    const cut = original[27]?.offset as string;
    const a = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 4 });
    const b = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 5 });
    const outcomes = await Promise.allSettled([a.archiveStream(ref, cut), b.archiveStream(ref, cut), a.archiveStream(ref, cut)]);
    for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toBeInstanceOf(ArchiveIntegrityError);
    await a.archiveStream(ref, cut);
    const segs = await a.index.segments(ref);
    expect(segs[0]?.firstVersion).toBe(1);
    expect(segs[segs.length - 1]?.lastVersion).toBe(27);
    expect(strip(await createArchivedEventReader(r.client, blob, PARTITIONS).read(ref))).toEqual(strip(original));
    expect((await store.read(ref)).map((e) => e.version)).toEqual([28, 29, 30]);
  });

  it("archives a partition log before trimming it, only past what every group acknowledged; reads span both", async () => {
    // A Redis prefix of its own: the partition log must hold only this test's entries.
    const own = await testRedis(combo.redis);
    try {
      const store = createRedisEventStore(own.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
      const r = own;
      // Two streams in the same partition, interleaved in its log: A1 A2 A3 B1 B2 A4 A5.
      const p = 1;
      const inP = (): StreamRef => {
        for (;;) {
          const ref = newRef();
          if (streamKeys(ref, PARTITIONS).partition === p) return ref;
        }
      };
      const A = inP();
      const B = inP();
      const ev = (v: number) => ({ type: "x", at: new Date().toISOString(), data: { v } });
      for (let v = 0; v < 3; v++) await store.append(A, v, [ev(v)], `a${v}`);
      await store.append(B, 0, [ev(0), ev(1)], "b");
      await store.append(A, 3, [ev(3), ev(4)], "a-late");
      const log = streamKeys(A, PARTITIONS).log;
      const original = await r.client.xrangeBuffer(log, "-", "+");
      expect(original.length).toBe(7);
      const source = createArchivedLogSource(r.client, blob);
      const asPlain = (recs: Array<{ id: string; fields: Map<string, Buffer> }>) =>
        recs.map((x) => [x.id, ...["k", "o", "e", "h"].map((f) => x.fields.get(f)?.toString("hex"))]);
      const plainOriginal = original.map(([id, flat]) => {
        const f = new Map<string, Buffer>();
        for (let i = 0; i + 1 < flat.length; i += 2) f.set((flat[i] as Buffer).toString(), flat[i + 1] as Buffer);
        return { id: id.toString(), fields: f };
      });
      const archiver = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 3 });
      const future = `${Date.now() + 60_000}-0`;
      // No consumer group yet: archived, but nothing may leave Redis.
      expect(await archiver.trimPartitionLog(p, future)).toBe(0);
      expect(await r.client.xlen(log)).toBe(7);
      expect((await logArchiveSegments(r.client, p)).map((m) => m.count)).toEqual([3, 3, 1]);
      await r.client.xgroup("CREATE", log, "projector", "0");
      const read = (await r.client.xreadgroup("GROUP", "projector", "c1", "COUNT", 6, "STREAMS", log, ">")) as Array<[string, Array<[string, string[]]>]>;
      const ids = (read[0]?.[1] ?? []).map(([id]) => id);
      expect(ids.length).toBe(6);
      await r.client.xack(log, "projector", ...ids.slice(0, 5));
      // A1..B2 are acknowledged; A4 is pending in the group.
      expect(await archiver.trimPartitionLog(p, future)).toBe(5);
      await r.client.xack(log, "projector", ids[5] as string);
      // A4 goes; A5 was never delivered to the group.
      expect(await archiver.trimPartitionLog(p, future)).toBe(1);
      expect(await r.client.xlen(log)).toBe(1);
      // Whatever was trimmed, reads span the log archive and Redis.
      expect(asPlain(await source.range(p, "0-0", { limit: 100 }))).toEqual(asPlain(plainOriginal));
      for (let from = 0; from < 7; from++) {
        for (const limit of [1, 2, 5]) {
          const after = from === 0 ? "0-0" : plainOriginal[from - 1]?.id ?? "0-0";
          expect(asPlain(await source.range(p, after, { limit }))).toEqual(asPlain(plainOriginal.slice(from, from + limit)));
          const to = plainOriginal[Math.min(6, from + 1)]?.id as string;
          expect(asPlain(await source.range(p, after, { limit: 100, to }))).toEqual(asPlain(plainOriginal.slice(from, Math.min(6, from + 1) + 1)));
        }
      }
      // A second group that is behind holds the log back.
      await r.client.xgroup("CREATE", log, "slow", "0");
      expect(await archiver.trimPartitionLog(p, future)).toBe(0);
    } finally {
      await own.cleanup();
    }
  });

  it("collects orphan log segments below the log index's end", async () => {
    // Its own Redis prefix and blob folder: partition-log segment keys are per deployment, and
    // the collector must see only this test's segments.
    const own = await testRedis(combo.redis);
    const dir = await mkdtemp(join(tmpdir(), "tributary-log-gc-"));
    const blob = createFileBlobStore(dir);
    try {
      const ownStore = createRedisEventStore(own.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
      const ref = newRef();
      for (let v = 0; v < 6; v++) await ownStore.append(ref, v, [{ type: "x", at: new Date().toISOString(), data: { v } }], `c${v}`);
      const { partition } = streamKeys(ref, PARTITIONS);
      const future = `${Date.now() + 60_000}-0`;
      const crashing = createArchiver(own.client, blob, {
        partitions: PARTITIONS,
        retentionMs: 0,
        maxSegmentEvents: 3,
        faults: {
          at(step) {
            if (step === "log-stored") throw new Crash("after log store");
          },
        },
      });
      await expect(crashing.trimPartitionLog(partition, future)).rejects.toBeInstanceOf(Crash);
      await createArchiver(own.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 4 }).trimPartitionLog(partition, future);
      const segs = await logArchiveSegments(own.client, partition);
      expect(segs.map((m) => m.count)).toEqual([4, 2]);
      expect((await blob.list(`archive-log/p${partition}/`)).length).toBe(3);
      expect(await collectLogOrphans(own.client, blob, partition)).toBe(1);
      expect((await blob.list(`archive-log/p${partition}/`)).map((b) => b.key)).toEqual(segs.map((m) => m.key));
    } finally {
      await own.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a malformed partition-log entry fails only its partition's log step", async () => {
    const own = await testRedis(combo.redis);
    try {
      const ownStore = createRedisEventStore(own.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
      const ref = newRef();
      await ownStore.append(ref, 0, [{ type: "x", at: new Date().toISOString(), data: {} }], "c");
      const { log, partition } = streamKeys(ref, PARTITIONS);
      await own.client.xadd(log, "*", "junk", "1");
      const archiver = createArchiver(own.client, blob, { partitions: PARTITIONS, retentionMs: 0, now: () => Date.now() + 1000 });
      const report = await archiver.runOnce({ trimLog: true });
      expect(report.events).toBe(1);
      expect(report.failures.map((f) => f.stream)).toEqual([`{p${partition}}:log`]);
    } finally {
      await own.cleanup();
    }
  });

  it("survives a crash at every step of partition-log archiving and trimming", async () => {
    const own = await testRedis(combo.redis);
    try {
      const store = createRedisEventStore(own.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
      const p = 2;
      const refs: StreamRef[] = [];
      while (refs.length < 3) {
        const ref = newRef();
        if (streamKeys(ref, PARTITIONS).partition === p) refs.push(ref);
      }
      const log = streamKeys(refs[0] as StreamRef, PARTITIONS).log;
      await own.client.xgroup("CREATE", log, "projector", "$", "MKSTREAM");
      const source = createArchivedLogSource(own.client, blob);
      let version = 0;
      let boundaries = 0;
      for (let n = 1; n < 100; n++) {
        // New entries for every round, all delivered and acknowledged.
        for (const ref of refs) await store.append(ref, version, [{ type: "x", at: new Date().toISOString(), data: { n } }], `r${n}`);
        version += 1;
        const before = (await source.range(p, "0-0", { limit: 10_000 })).map((x) => x.id);
        const got = (await own.client.xreadgroup("GROUP", "projector", "c", "COUNT", 100, "STREAMS", log, ">")) as Array<[string, Array<[string]>]> | null;
        const delivered = (got?.[0]?.[1] ?? []).map(([id]) => id);
        if (delivered.length > 0) await own.client.xack(log, "projector", ...delivered);
        let calls = 0;
        const crashing = createArchiver(own.client, blob, {
          partitions: PARTITIONS,
          retentionMs: 0,
          maxSegmentEvents: 2,
          faults: {
            at() {
              calls += 1;
              if (calls === n) throw new Crash(`#${n}`);
            },
          },
        });
        const future = `${Date.now() + 60_000}-0`;
        let crashed = false;
        try {
          await crashing.trimPartitionLog(p, future);
        } catch (e) {
          if (!(e instanceof Crash)) throw e;
          crashed = true;
        }
        expect((await source.range(p, "0-0", { limit: 10_000 })).map((x) => x.id)).toEqual(before);
        await createArchiver(own.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 2 }).trimPartitionLog(p, future);
        expect((await source.range(p, "0-0", { limit: 10_000 })).map((x) => x.id)).toEqual(before);
        expect(await own.client.xlen(log)).toBe(0);
        if (!crashed) {
          boundaries = n - 1;
          break;
        }
      }
      expect(boundaries).toBeGreaterThanOrEqual(5);
    } finally {
      await own.cleanup();
    }
  });

  it("collects orphan segments left by a crash between store and record, never in-flight ones", async () => {
    const ref = newRef();
    await appendEvents(ref, 20);
    const original = await store.read(ref);
    const cut = original[15]?.offset as string;
    // Crash right after storing the first segment (versions 1-4)…
    const crashing = createArchiver(r.client, blob, {
      partitions: PARTITIONS,
      retentionMs: 0,
      maxSegmentEvents: 4,
      faults: {
        at(step) {
          if (step === "stored") throw new Crash("after store");
        },
      },
    });
    await expect(crashing.archiveStream(ref, cut)).rejects.toBeInstanceOf(Crash);
    // …then the rerun cuts segments differently (1-6, 7-12, 13-15): 1-4 is now an orphan.
    const archiver = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 6 });
    await archiver.archiveStream(ref, cut);
    const prefix = streamArchivePrefix(ref);
    // A segment beyond the index's end may belong to an archiver between store and record: kept.
    const inFlight = segmentKey(ref, 16, 18);
    await blob.put(inFlight, Buffer.from("in flight"));
    expect((await blob.list(prefix)).length).toBe(5);
    expect(await archiver.collectOrphans(ref)).toBe(1);
    expect(await blob.get(segmentKey(ref, 1, 4))).toBeNull();
    expect(await blob.get(inFlight)).not.toBeNull();
    expect(strip(await createArchivedEventReader(r.client, blob, PARTITIONS).read(ref))).toEqual(strip(original));
    await blob.delete(inFlight);
  });

  it("runOnce archives only the partitions its filter accepts", async () => {
    const own = await testRedis(combo.redis);
    try {
      const ownStore = createRedisEventStore(own.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
      const refs = Array.from({ length: 8 }, () => newRef());
      for (const ref of refs) await ownStore.append(ref, 0, [{ type: "x", at: new Date().toISOString(), data: {} }], "c");
      const archiver = createArchiver(own.client, blob, {
        partitions: PARTITIONS,
        retentionMs: 0,
        now: () => Date.now() + 1000,
        partitionFilter: (p) => p % 2 === 0,
      });
      const report = await archiver.runOnce({ gc: true });
      const even = refs.filter((ref) => streamKeys(ref, PARTITIONS).partition % 2 === 0);
      expect(report.streams).toBe(even.length);
      expect(report.skipped).toBe(refs.length - even.length);
      for (const ref of refs) {
        const len = await own.client.xlen(streamKeys(ref, PARTITIONS).stream);
        expect(len).toBe(streamKeys(ref, PARTITIONS).partition % 2 === 0 ? 0 : 1);
      }
    } finally {
      await own.cleanup();
    }
  });

  it("recovers a lost archive index from the blobs, past longer orphans, and refuses a forged archive", async () => {
    const ref = newRef();
    await appendEvents(ref, 20);
    const original = await store.read(ref);
    const cut = original[15]?.offset as string;
    // An orphan first (crash after store, segment 1-6), then the real segments 1-4, 5-8, …
    const crashing = createArchiver(r.client, blob, {
      partitions: PARTITIONS,
      retentionMs: 0,
      maxSegmentEvents: 6,
      faults: {
        at(step) {
          if (step === "stored") throw new Crash("after store");
        },
      },
    });
    await expect(crashing.archiveStream(ref, cut)).rejects.toBeInstanceOf(Crash);
    const archiver = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 4 });
    await archiver.archiveStream(ref, cut);
    const before = await archiver.index.segments(ref);
    expect(before.length).toBe(4);
    await r.client.del(archiver.index.key(ref));
    const reader = createArchivedEventReader(r.client, blob, PARTITIONS);
    // Without its index the archived part is unreachable: a read from the beginning says so.
    await expect(reader.read(ref)).rejects.toThrow(/history has a gap: expected version 1/);
    const report = await recoverArchiveIndex(r.client, blob, PARTITIONS, ref);
    expect(report).toMatchObject({ streams: 1, recorded: before.length, conflicts: [] });
    const after = await archiver.index.segments(ref);
    expect(after.map(({ createdAt: _c, ...m }) => m)).toEqual(before.map(({ createdAt: _c, ...m }) => m));
    expect(strip(await reader.read(ref))).toEqual(strip(original));
    // Recovering again adds nothing.
    expect((await recoverArchiveIndex(r.client, blob, PARTITIONS, ref)).recorded).toBe(0);

    // A forger rewrites the last archived segment (events 13-15) consistently with itself; with the
    // index lost, Redis's next event (16) does not chain from it: nothing is recorded.
    const lastSeg = before[3] as (typeof before)[number];
    const honest = await reader.readEntries(ref, { from: original[11]?.offset as string, to: lastSeg.lastOffset });
    let prev = lastSeg.prevHash;
    const forged = honest.map((en, i) => {
      const bytes = i === 1 ? encodeEvent({ ...decodeEvent(en.bytes), data: { text: "forged" } }) : Buffer.from(en.bytes);
      prev = chainHash(prev, bytes);
      return { offset: en.offset, bytes, hash: prev };
    });
    const forgedSeg = await encodeSegment(ref, forged, { prevHash: lastSeg.prevHash, firstVersion: 13 });
    await blob.put(lastSeg.key, forgedSeg.bytes);
    await r.client.del(archiver.index.key(ref));
    const refused = await recoverArchiveIndex(r.client, blob, PARTITIONS, ref);
    expect(refused.recorded).toBe(0);
    expect(refused.conflicts[0]?.error).toMatch(/does not continue/);
    expect(await archiver.index.segments(ref)).toEqual([]);
  });

  it("refuses to archive a broken chain and leaves the stream in Redis", async () => {
    const ref = newRef();
    await appendEvents(ref, 6);
    const original = await store.read(ref);
    const key = streamKeys(ref, PARTITIONS).stream;
    // Lose event 2 from Redis (someone XDELs it): the run of versions breaks.
    const victim = original[1]?.offset as string;
    await r.client.xdel(key, victim);
    const all = createArchivedEventReader(r.client, blob, PARTITIONS);
    const archiver = createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0 });
    await expect(archiver.archiveStream(ref, `${Date.now() + 1000}-0`)).rejects.toBeInstanceOf(ArchiveIntegrityError);
    expect(await r.client.xlen(key)).toBe(5);
    expect(await archiver.index.segments(ref)).toEqual([]);
    expect((await all.read(ref)).length).toBe(5);
  });
});

describe("archiver role (lease-shared periodic passes)", () => {
  it("archives the partitions its lease holds and stops cleanly", async () => {
    const r = await testRedis("single");
    const dir = await mkdtemp(join(tmpdir(), "tributary-archive-role-"));
    const blob = createFileBlobStore(dir);
    try {
      const store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
      const refs = Array.from({ length: 6 }, (): StreamRef => ({ kind: "conversation", id: `c-${randomUUID()}` }));
      for (const ref of refs) await store.append(ref, 0, [{ type: "x", at: new Date().toISOString(), data: {} }], "c");
      const role = startArchiverRole({ redis: r.client, blob, partitions: PARTITIONS, retentionMs: 0, now: () => Date.now() + 1000, intervalMs: 3_600_000 });
      try {
        // A lone process takes every partition within a few lease rounds.
        while (role.lease.owned().length < PARTITIONS) await new Promise((res) => setTimeout(res, 20));
        const report = await role.runNow();
        expect(report.failures).toEqual([]);
        expect(report.streams).toBe(refs.length);
        for (const ref of refs) expect(await r.client.xlen(streamKeys(ref, PARTITIONS).stream)).toBe(0);
      } finally {
        await role.stop();
      }
      expect(role.lease.owned()).toEqual([]);
    } finally {
      await r.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
