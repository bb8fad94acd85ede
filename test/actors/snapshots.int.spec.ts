import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileBlobStore, type BlobStore } from "../../core/blob/index.js";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { conversationDecider } from "../../actors/conversation/index.js";
import { streamKeys } from "../../core/keys.js";
import { AggregateRepository, blobSnapshotStore, metaSnapshotPointer, metaStreamProbe, noSnapshots } from "../../actors/runtime/index.js";
import { testRedis, type TestRedis } from "../support/redis.js";
import { testS3Bucket } from "../support/s3.js";

/**
 * Issue 3: rehydration from the latest snapshot plus the tail equals rehydration from the full
 * stream — on the file blob store and on a real S3 server, for any snapshot interval and any
 * number of events.
 */
const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();

describe.each(["file", "s3"] as const)("snapshots in the %s blob store", (kind) => {
  let r: TestRedis;
  let blobs: BlobStore;
  let dir: string;
  let dropBucket: (() => Promise<void>) | undefined;
  const log = createLogger("silent");

  beforeAll(async () => {
    r = await testRedis("single");
    dir = mkdtempSync(join(tmpdir(), "tributary-snap-"));
    if (kind === "file") blobs = createFileBlobStore(dir);
    else {
      const b = await testS3Bucket();
      blobs = b.store;
      dropBucket = b.cleanup;
    }
  });
  afterAll(async () => {
    await dropBucket?.();
    await r?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("snapshot + tail folds to the same state as the whole stream", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 2, max: 25 }), async (deltas, every) => {
        const store = createRedisEventStore(r.client, { partitions: 4, idemTtlMs: 60_000 });
        const repo = new AggregateRepository({
          kind: "conversation",
          decider: conversationDecider,
          store,
          snapshots: blobSnapshotStore(blobs),
          snapshotEvery: every,
          log,
        });
        const id = `snap-${Math.random().toString(36).slice(2)}`;
        const run = async (cmd: Parameters<typeof conversationDecider.decide>[0], n: number) => {
          const res = await repo.execute(id, `c${n}`, cmd.at, (s) => conversationDecider.decide(cmd, s));
          expect(res.decision.ok).toBe(true);
        };
        await run({ type: "create", at: at(0), ownerId: "u", tenantId: "t", projectId: null }, 0);
        await run({ type: "postMessage", at: at(1), messageId: "m1", replyId: "r1", clientMessageId: "c1", text: "hello", userId: "u", maxTokens: 1000 }, 1);
        for (let i = 0; i < deltas; i++) await run({ type: "appendDelta", at: at(2 + i), replyId: "r1", index: i, text: `t${i} ` }, 2 + i);
        // Snapshot writes are fire-and-forget: wait until the latest one due has landed.
        const total = deltas + 3;
        const due = Math.floor(total / every) * every;
        for (let i = 0; due > 0 && i < 200; i++) {
          const snap = await blobSnapshotStore(blobs).get({ kind: "conversation", id });
          if ((snap?.version ?? 0) >= due) break;
          await new Promise((res) => setTimeout(res, 25));
        }

        const full = await new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots: noSnapshots, log }).rehydrate(id);
        const fromSnap = await new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots: blobSnapshotStore(blobs), log }).rehydrate(id);
        expect(fromSnap.version).toBe(full.version);
        expect(fromSnap.offset).toBe(full.offset);
        expect(fromSnap.state.value).toEqual(full.state.value);
        expect(fromSnap.state.context).toEqual(full.state.context);
        const snap = await blobSnapshotStore(blobs).get({ kind: "conversation", id });
        // A snapshot exists once the stream passed the interval.
        if (full.version >= every) expect(snap?.version).toBeGreaterThanOrEqual(every);
      }),
      { numRuns: kind === "file" ? 15 : 6 },
    );
  });

  it("ignores an unreadable snapshot and folds from the start", async () => {
    const store = createRedisEventStore(r.client, { partitions: 4, idemTtlMs: 60_000 });
    const id = `bad-${Math.random().toString(36).slice(2)}`;
    const repo = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots: blobSnapshotStore(blobs), log });
    await repo.execute(id, "c0", at(0), (s) => conversationDecider.decide({ type: "create", at: at(0), ownerId: "u", tenantId: "t", projectId: null }, s));
    await blobs.put(`snapshots/conversation/${id}.json`, Buffer.from("{not json"));
    const loaded = await new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots: blobSnapshotStore(blobs), log }).rehydrate(id);
    expect(loaded.version).toBe(1);
    await blobs.put(`snapshots/conversation/${id}.json`, Buffer.from(JSON.stringify({ version: 1, offset: loaded.offset, state: { wrong: true } })));
    const again = await new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots: blobSnapshotStore(blobs), log }).rehydrate(id);
    expect(again.version).toBe(1);
    expect(again.state.context.ownerId).toBe("u");
  });

  /**
   * The meta pointer records where the snapshot ends (`snapAt`), so a first load reads the tail
   * while the blob is fetched. The pointer is only a hint: whatever it says — older or newer than
   * the blob, or out of step with `snap` — the state is the whole stream's.
   */
  describe("the tail read starts before the blob arrives", () => {
    const P = 4;
    const build = async (events: number) => {
      const store = createRedisEventStore(r.client, { partitions: P, idemTtlMs: 60_000 });
      const writer = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots: noSnapshots, log });
      const id = `pre-${Math.random().toString(36).slice(2)}`;
      const offsets: string[] = [""];
      const run = async (cmd: Parameters<typeof conversationDecider.decide>[0], n: number) => {
        const res = await writer.execute(id, `c${n}`, cmd.at, (s) => conversationDecider.decide(cmd, s));
        offsets.push(...(res.appended?.offsets ?? []));
      };
      await run({ type: "create", at: at(0), ownerId: "u", tenantId: "t", projectId: null }, 0);
      await run({ type: "postMessage", at: at(1), messageId: "m1", replyId: "r1", clientMessageId: "c1", text: "hello", userId: "u", maxTokens: 1000 }, 1);
      for (let i = 0; offsets.length - 1 < events; i++) await run({ type: "appendDelta", at: at(2 + i), replyId: "r1", index: i, text: `t${i} ` }, 2 + i);
      const states = [conversationDecider.initialState()];
      for (const e of await store.read({ kind: "conversation", id })) states.push(conversationDecider.evolve(states[states.length - 1] as never, conversationDecider.parseEvent(e)));
      return { store, id, ref: { kind: "conversation" as const, id }, offsets, states };
    };
    /** A first load as a worker does it, counting the Redis reads made before the blob was asked for. */
    const firstLoad = async (store: ReturnType<typeof createRedisEventStore>, id: string) => {
      let reads = 0;
      let readsBeforeBlob = -1;
      const counted = { ...store, read: (...a: Parameters<typeof store.read>) => (reads++, store.read(...a)) };
      const base = blobSnapshotStore(blobs);
      const snapshots = { ...base, get: (ref: Parameters<typeof base.get>[0]) => ((readsBeforeBlob = reads), base.get(ref)) };
      const probe = metaStreamProbe(r.client, P, { snapshots: true });
      const loaded = await new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: counted, snapshots, probe, log }).rehydrate(id);
      return { loaded, readsBeforeBlob };
    };

    it("reads the tail from the pointer's offset while the snapshot is fetched", async () => {
      const { store, id, ref, offsets, states } = await build(12);
      const snapshots = blobSnapshotStore(blobs, metaSnapshotPointer(r.client, P));
      await snapshots.put(ref, { version: 8, offset: offsets[8] as string, state: conversationDecider.toSnapshot(states[8] as never) });
      const { loaded, readsBeforeBlob } = await firstLoad(store, id);
      expect(readsBeforeBlob).toBe(1);
      expect(loaded.version).toBe(12);
      expect(loaded.offset).toBe(offsets[12]);
      expect(loaded.state.context).toEqual(states[12]?.context);
    });

    it("equals the whole stream whatever the pointer says", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 3, max: 30 }).chain((n) =>
            fc.record({ n: fc.constant(n), blob: fc.integer({ min: 1, max: n }), at: fc.integer({ min: 1, max: n }), snap: fc.option(fc.integer({ min: 1, max: n })) }),
          ),
          async ({ n, blob, at: atVersion, snap }) => {
            const { store, id, ref, offsets, states } = await build(n);
            await blobSnapshotStore(blobs).put(ref, { version: blob, offset: offsets[blob] as string, state: conversationDecider.toSnapshot(states[blob] as never) });
            // `snap` null: in step with snapAt (as written); else possibly moved on by an older worker.
            await r.client.hset(streamKeys(ref, P).meta, "snap", String(snap ?? atVersion), "snapAt", `${atVersion}/${offsets[atVersion]}`);
            const { loaded, readsBeforeBlob } = await firstLoad(store, id);
            expect(loaded.version).toBe(n);
            expect(loaded.offset).toBe(offsets[n]);
            expect(loaded.state.value).toEqual(states[n]?.value);
            expect(loaded.state.context).toEqual(states[n]?.context);
            const prefetches = (snap === null || snap === atVersion) && atVersion < n;
            expect(readsBeforeBlob).toBe(prefetches ? 1 : 0);
          },
        ),
        { numRuns: kind === "file" ? 25 : 8 },
      );
    });
  });
});
