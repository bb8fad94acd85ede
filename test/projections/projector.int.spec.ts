import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewEvent } from "../../core/envelope.js";
import { createFileBlobStore } from "../../core/blob/file-store.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { archivePartitionLog, createArchivedLogSource, logArchiveHead } from "../../core/redis/log-archive.js";
import type { EventStore } from "../../core/event-store.js";
import { liveSchema } from "../../migrations/index.js";
import { dumpReadModels } from "../../projections/dump.js";
import { redisLogSource } from "../../projections/log-source.js";
import { projectPartition, Projector } from "../../projections/projector.js";
import { rebuild } from "../../projections/rebuild.js";
import { reconcile } from "../../projections/reconcile.js";
import { projectionStatus } from "../../projections/status.js";
import { PG_TARGETS, testDatabase, type TestDb } from "../support/postgres.js";
import { testRedis, type TestRedis } from "../support/redis.js";
import { chatWorkload, type TestEvent } from "./fixtures.js";

const PARTITIONS = 4;

/** Appends test events through the real event store (the real entry format, versions, hash chain). */
function appender(store: EventStore) {
  const versions = new Map<string, number>();
  let n = 0;
  return async (events: TestEvent[]) => {
    for (const ev of events) {
      const key = `${ev.kind}/${ev.id}`;
      const v = versions.get(key) ?? 0;
      const e: NewEvent = { type: ev.type, data: ev.data, at: ev.at };
      await store.append({ kind: ev.kind, id: ev.id }, v, [e], `cmd-${n++}`);
      versions.set(key, v + 1);
    }
  };
}

describe.each(PG_TARGETS)("projector on %s with Redis", (target) => {
  let t: TestDb;
  let r: TestRedis;
  let projector: Projector | undefined;
  beforeAll(async () => {
    t = await testDatabase(target);
    r = await testRedis("single");
  });
  afterAll(async () => {
    await projector?.stop();
    await r?.cleanup();
    await t?.cleanup();
  });

  const caughtUp = async () => {
    for (let i = 0; i < 600; i++) {
      const st = await projectionStatus(t.db, r.client, PARTITIONS);
      if (st.every((p) => p.lagEvents === 0)) return st;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error("projector did not catch up");
  };

  it("follows the logs; a rebuild while events keep arriving ends equal to a projection from scratch; reconcile agrees", async () => {
    const store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
    const append = appender(store);
    await append(chatWorkload(11, { conversations: 8, turns: 2, deltas: 5, prefix: "h" }));

    projector = new Projector({
      db: t.db,
      redis: r.client,
      partitions: () => [0, 1, 2, 3],
      consumer: "test-1",
      maxDeliveries: 5,
      blockMs: 100,
      catchUpMs: 200,
      retryBaseMs: 100,
    });
    await projector.start();
    await append(chatWorkload(12, { conversations: 6, turns: 2, deltas: 5, prefix: "live" }));
    const st = await caughtUp();
    expect(st.reduce((a, p) => a + p.applied, 0)).toBeGreaterThan(100);
    // Live appends went through the fast path (delivered entries applied without a re-read).
    expect(projector.counters.delivered).toBeGreaterThan(0);
    expect(projector.counters.errors).toBe(0);
    const schemaBefore = await liveSchema(t.db as never);

    // Rebuild while a writer keeps appending and the projector keeps projecting.
    let writing = true;
    const writer = (async () => {
      let k = 0;
      while (writing) await append(chatWorkload(100 + k, { conversations: 1, turns: 1, deltas: 3, prefix: `w${k++}` }));
    })();
    const rb = await rebuild(t.db, redisLogSource(r.client), {
      partitions: PARTITIONS,
      maxBatch: 50,
      beforeSwitch: () => new Promise((res) => setTimeout(res, 200)),
    });
    await new Promise((res) => setTimeout(res, 200));
    writing = false;
    await writer;
    expect(rb.previous).toBe(schemaBefore);
    expect(await liveSchema(t.db as never)).toBe(rb.schema);
    await caughtUp();

    // From scratch: a second rebuild (no writer now), kept next to the live copy.
    const scratch = await rebuild(t.db, redisLogSource(r.client), { partitions: PARTITIONS, keepOld: true });
    const live = await dumpReadModels(t.db, scratch.previous);
    const fresh = await dumpReadModels(t.db, scratch.schema);
    expect(live.conversations?.length).toBeGreaterThan(14);
    expect(live).toEqual(fresh);

    const ok = await reconcile(t.db, redisLogSource(r.client), { partitions: PARTITIONS });
    expect(ok.differences).toEqual([]);
    expect(ok.events).toBeGreaterThan(100);

    // A tampered total is found.
    const s = await liveSchema(t.db as never);
    await sql`update ${sql.id(s, "spend_daily")} set cost_micros = cost_micros + 1 where ctid = (select ctid from ${sql.id(s, "spend_daily")} limit 1)`.execute(t.db);
    const bad = await reconcile(t.db, redisLogSource(r.client), { partitions: PARTITIONS });
    expect(bad.differences).toHaveLength(1);
    await projector.stop();
    projector = undefined;

    // Entries trimmed from Redis before they were projected are reported, never silently skipped.
    await append(chatWorkload(77, { conversations: 1, turns: 1, deltas: 1, prefix: "trim" }));
    const behind = (await projectionStatus(t.db, r.client, PARTITIONS)).find((p) => p.lagEvents > 0);
    if (!behind) throw new Error("expected an unprojected partition");
    expect(behind.trimmedUnapplied).toBe(false);
    await r.client.xtrim(`{p${behind.partition}}:log`, "MINID", "99999999999999-0");
    const after = (await projectionStatus(t.db, r.client, PARTITIONS)).find((p) => p.partition === behind.partition);
    expect(after?.trimmedUnapplied).toBe(true);
  });

  it("two projectors on the same partitions never double-apply (checkpoint row lock)", async () => {
    // Own database and Redis prefix: the test above leaves a deliberately trimmed partition behind.
    const t2 = await testDatabase(target);
    const r2 = await testRedis("single");
    try {
      const store = createRedisEventStore(r2.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
      const append = appender(store);
      const make = (name: string) =>
        new Projector({ db: t2.db, redis: r2.client, partitions: () => [0, 1, 2, 3], consumer: name, maxDeliveries: 5, blockMs: 50, catchUpMs: 100, retryBaseMs: 50, maxBatch: 7 });
      const a = make("twin-a");
      const b = make("twin-b");
      await Promise.all([a.start(), b.start()]);
      try {
        await Promise.all([append(chatWorkload(31, { conversations: 5, turns: 2, deltas: 4, prefix: "twinA" })), append(chatWorkload(32, { conversations: 5, turns: 2, deltas: 4, prefix: "twinB" }))]);
        for (let i = 0; i < 600; i++) {
          if ((await projectionStatus(t2.db, r2.client, PARTITIONS)).every((p) => p.lagEvents === 0)) break;
          await new Promise((res) => setTimeout(res, 100));
        }
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
      expect((await projectionStatus(t2.db, r2.client, PARTITIONS)).every((p) => p.lagEvents === 0)).toBe(true);
      expect(a.counters.applied + b.counters.applied).toBeGreaterThan(0);
      const scratch = await rebuild(t2.db, redisLogSource(r2.client), { partitions: PARTITIONS, keepOld: true });
      expect(await dumpReadModels(t2.db, scratch.previous)).toEqual(await dumpReadModels(t2.db, scratch.schema));
      expect((await reconcile(t2.db, redisLogSource(r2.client), { partitions: PARTITIONS })).differences).toEqual([]);
    } finally {
      await r2.cleanup();
      await t2.cleanup();
    }
  });

  it("rebuild reads the archive: after the log was archived and trimmed, a rebuild equals the live read model", async () => {
    const t3 = await testDatabase(target);
    const r3 = await testRedis("single");
    const dir = mkdtempSync(join(tmpdir(), "tributary-blobs-"));
    const blob = createFileBlobStore(dir);
    try {
      const append = appender(createRedisEventStore(r3.client, { partitions: PARTITIONS, idemTtlMs: 60_000 }));
      await append(chatWorkload(41, { conversations: 6, turns: 2, deltas: 4, prefix: "arch" }));
      for (let p = 0; p < PARTITIONS; p++) await projectPartition(t3.db, redisLogSource(r3.client), p);
      // Archive every entry so far and trim Redis down to nothing older than the archive's end.
      let trimmed = 0;
      for (let p = 0; p < PARTITIONS; p++) {
        await archivePartitionLog(r3.client, blob, p, "99999999999999-0");
        const head = await logArchiveHead(r3.client, p);
        if (head) trimmed += Number(await r3.client.xtrim(`{p${p}}:log`, "MINID", `${head.lastId.split("-")[0]}-${Number(head.lastId.split("-")[1]) + 1}`));
      }
      expect(trimmed).toBeGreaterThan(50);
      await append(chatWorkload(42, { conversations: 2, turns: 1, deltas: 2, prefix: "tail" }));
      const source = createArchivedLogSource(r3.client, blob);
      for (let p = 0; p < PARTITIONS; p++) await projectPartition(t3.db, source, p);
      const rb = await rebuild(t3.db, source, { partitions: PARTITIONS, keepOld: true });
      expect(await dumpReadModels(t3.db, rb.schema)).toEqual(await dumpReadModels(t3.db, rb.previous));
      expect((await reconcile(t3.db, source, { partitions: PARTITIONS })).differences).toEqual([]);
    } finally {
      await blob.close();
      rmSync(dir, { recursive: true, force: true });
      await r3.cleanup();
      await t3.cleanup();
    }
  });
});
