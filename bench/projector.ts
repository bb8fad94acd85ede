/**
 * Projection throughput (issue 4 benchmark): events/s the projector writes into Postgres, next to the
 * raw limit measured in the same run on the same database — a multi-row INSERT of one row per event
 * (partition, log id, stream, type, time, data as jsonb), in the same batch sizes and transactions,
 * with no projection logic and the decoding done beforehand. Ratio = projector / raw.
 *
 *   npx tsx bench/projector.ts [--target pg|pglite] [--events 100000] [--batch 2000]
 *
 * Four figures: (A) applyBatch over in-memory log entries (decode + validate + fold + write);
 * (B) the raw INSERT limit; (C) catch-up: projectPartition reading the partition logs from Redis;
 * (D) the runtime: a Projector following the logs through its consumer group while they are written.
 * Bounded (one pass over --events), loopback only; every table and key it makes is removed.
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { sql } from "kysely";
import { Redis } from "ioredis";
import { decodeEvent } from "../core/codec.js";
import { keys } from "../core/keys.js";
import { applyBatch } from "../projections/apply.js";
import { redisLogSource } from "../projections/log-source.js";
import { liveCheckpoints } from "../projections/checkpoints.js";
import { projectPartition, Projector } from "../projections/projector.js";
import { createReadModelTables } from "../migrations/index.js";
import { testDatabase, type PgTarget } from "../test/support/postgres.js";
import { chatWorkload, LogBuilder } from "../test/projections/fixtures.js";

const { values } = parseArgs({
  options: {
    target: { type: "string", default: "pg" },
    events: { type: "string", default: "100000" },
    batch: { type: "string", default: "2000" },
    partitions: { type: "string", default: "4" },
  },
});
const target = values.target as PgTarget;
const N = Number(values.events);
const BATCH = Number(values.batch);
const P = Number(values.partitions);

const t = await testDatabase(target);
const db = t.db;
const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { keyPrefix: `bench:${randomUUID()}:` });
try {
  // Workload: chat traffic (deltas dominate, as in production), cut to exactly N events.
  const log = new LogBuilder(P);
  let seed = 1;
  while (log.entries.length < N) log.add(...chatWorkload(seed++, { conversations: 200, turns: 4, deltas: 24, prefix: `b${seed}` }));
  const entries = log.entries.slice(0, N);
  const byPartition = new Map<number, typeof entries>();
  for (const e of entries) byPartition.set(e.partition, [...(byPartition.get(e.partition) ?? []), e]);
  const batches: (typeof entries)[] = [];
  for (const list of byPartition.values()) for (let i = 0; i < list.length; i += BATCH) batches.push(list.slice(i, i + BATCH));

  // (A) projection, database side.
  const schemaA = "rm_bench_a";
  await sql`create schema ${sql.id(schemaA)}`.execute(db);
  await createReadModelTables(db as never, schemaA);
  let t0 = performance.now();
  for (const b of batches) await applyBatch(db, b, { schema: schemaA });
  const projMs = performance.now() - t0;

  // (B) raw limit: the same events as rows, multi-row INSERT, same batches, one transaction each.
  await sql`create table bench_raw (partition int not null, log_id text not null, stream text not null, type text not null, at timestamptz not null, data jsonb not null, primary key (partition, log_id))`.execute(db);
  const rawBatches = batches.map((b) =>
    b.map((e) => {
      const ev = decodeEvent(e.fields.get("e") as Buffer);
      return { partition: e.partition, log_id: e.id, stream: (e.fields.get("k") as Buffer).toString(), type: ev.type, at: ev.at, data: JSON.stringify(ev.data) };
    }),
  );
  t0 = performance.now();
  for (const rows of rawBatches) {
    await db.transaction().execute(async (trx) => {
      // Same commit mode as the projector (apply.ts asyncCommit), so the comparison is like for like.
      await sql`set local synchronous_commit = off`.execute(trx);
      for (let i = 0; i < rows.length; i += 1000) {
        const part = rows.slice(i, i + 1000);
        await sql`insert into bench_raw (partition, log_id, stream, type, at, data) values ${sql.join(
          part.map((r) => sql`(${r.partition}, ${r.log_id}, ${r.stream}, ${r.type}, ${r.at}, ${r.data}::jsonb)`),
        )}`.execute(trx);
      }
    });
  }
  const rawMs = performance.now() - t0;

  // (C) full path: the same entries in Redis partition logs, projected by projectPartition (live schema).
  for (const [p, list] of byPartition) {
    for (let i = 0; i < list.length; i += 1000) {
      const pipe = redis.pipeline();
      for (const e of list.slice(i, i + 1000)) pipe.xadd(keys.log(p), e.id, "k", e.fields.get("k") as Buffer, "o", e.fields.get("o") as Buffer, "e", e.fields.get("e") as Buffer, "h", "00");
      await pipe.exec();
    }
  }
  const source = redisLogSource(redis);
  t0 = performance.now();
  for (const p of byPartition.keys()) await projectPartition(db, source, p, { maxBatch: BATCH });
  const fullMs = performance.now() - t0;

  // (D) the projector runtime as deployed: a Projector (consumer group, fast path) on an empty log of a
  // second database; the entries are XADDed (pipelined) and the clock runs until all are applied.
  const t2 = await testDatabase(target);
  const redis2 = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { keyPrefix: `${redis.options.keyPrefix ?? ""}d:` });
  let runtimeMs = 0;
  try {
    const projector = new Projector({ db: t2.db, redis: redis2, partitions: () => [...byPartition.keys()], consumer: "bench", maxDeliveries: 5, blockMs: 50, triggerBatch: 1000, maxBatch: BATCH });
    await projector.start();
    await new Promise((res) => setTimeout(res, 500));
    t0 = performance.now();
    for (const [p, list] of byPartition) {
      for (let i = 0; i < list.length; i += 1000) {
        const pipe = redis2.pipeline();
        for (const e of list.slice(i, i + 1000)) pipe.xadd(keys.log(p), e.id, "k", e.fields.get("k") as Buffer, "o", e.fields.get("o") as Buffer, "e", e.fields.get("e") as Buffer, "h", "00");
        await pipe.exec();
      }
    }
    while ([...(await liveCheckpoints(t2.db)).values()].reduce((a, c) => a + c.applied, 0) < N) await new Promise((res) => setTimeout(res, 20));
    runtimeMs = performance.now() - t0;
    await projector.stop();
    console.error(`runtime counters: ${JSON.stringify(projector.counters)}`);
  } finally {
    redis2.disconnect();
    await t2.cleanup();
  }

  const rate = (ms: number) => Math.round(N / (ms / 1000));
  const result = {
    bench: "projector",
    target,
    events: N,
    batch: BATCH,
    partitions: P,
    projectionEventsPerSec: rate(projMs),
    rawInsertEventsPerSec: rate(rawMs),
    ratio: Number((rawMs / projMs).toFixed(2)),
    fromRedisEventsPerSec: rate(fullMs),
    fromRedisRatio: Number((rawMs / fullMs).toFixed(2)),
    runtimeEventsPerSec: rate(runtimeMs),
    runtimeRatio: Number((rawMs / runtimeMs).toFixed(2)),
    at: new Date().toISOString(),
  };
  console.log(JSON.stringify(result));
  console.log(
    `| ${target} | ${N} | ${BATCH} | ${result.projectionEventsPerSec} | ${result.fromRedisEventsPerSec} | ${result.runtimeEventsPerSec} | ${result.rawInsertEventsPerSec} | ${Math.round(result.ratio * 100)}% · ${Math.round(result.fromRedisRatio * 100)}% · ${Math.round(result.runtimeRatio * 100)}% |`,
  );
} finally {
  let cursor = "0";
  const prefix = redis.options.keyPrefix ?? "";
  const raw = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  do {
    const [next, found] = await raw.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (found.length) await raw.unlink(...found);
  } while (cursor !== "0");
  raw.disconnect();
  redis.disconnect();
  await t.cleanup();
}
