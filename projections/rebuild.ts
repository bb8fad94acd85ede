import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { compareOffsets } from "../core/envelope.js";
import { createReadModelTables } from "../migrations/index.js";
import { applyBatch, applyInTransaction, READMODEL_LOCK } from "./apply.js";
import { liveCheckpoints } from "./checkpoints.js";
import type { Db } from "./db.js";
import type { LogSource } from "./log-source.js";

/**
 * `projections rebuild` (I1: dropping every read model and rebuilding from the log gives the same
 * rows), online:
 *
 * 1. create a fresh schema with every read-model table (the same migration code that shaped the
 *    live one) and project the whole log into it, partition by partition, while the live projector
 *    keeps running;
 * 2. switch: take the read-model lock exclusively — in-flight projector batches finish first and new
 *    ones wait — bring the new schema up to the live checkpoints inside that transaction, and point
 *    `tributary_readmodel` at it. Readers and projectors resolve the schema per transaction, so the
 *    next batch lands in the new copy and continues from its checkpoint, with no gap and no overlap;
 * 3. drop the old schema (again under the exclusive lock, so no reader is still inside it).
 *
 * Every read model is rebuilt together: they share one checkpoint per partition, which is what makes
 * a batch's effect on all of them atomic.
 */
export interface RebuildOptions {
  partitions: number;
  maxBatch?: number;
  /** Called after each applied batch (progress output). */
  onProgress?: (p: { partition: number; applied: number; total: number }) => void;
  /** Test hook: runs after the bulk copy, before the switch. */
  beforeSwitch?: () => Promise<void>;
  /** Keep the old schema (named in the result) instead of dropping it. */
  keepOld?: boolean;
}

export interface RebuildResult {
  schema: string;
  previous: string;
  applied: number;
}

async function shadowCheckpoint(db: Db, schema: string, partition: number): Promise<string> {
  const r = await db.withSchema(schema).selectFrom("checkpoints").select("log_id").where("partition", "=", partition).executeTakeFirst();
  return r?.log_id ?? "0-0";
}

export async function rebuild(db: Db, source: LogSource, o: RebuildOptions): Promise<RebuildResult> {
  const limit = o.maxBatch ?? 2000;
  const schema = `rm_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  await db.transaction().execute(async (trx) => {
    await sql`create schema ${sql.id(schema)}`.execute(trx);
    await createReadModelTables(trx as never, schema);
  });
  let total = 0;
  // Bulk copy outside any lock: two passes, the second picks up what arrived during the first.
  for (let pass = 0; pass < 2; pass++) {
    for (let p = 0; p < o.partitions; p++) {
      for (;;) {
        const cp = await shadowCheckpoint(db, schema, p);
        const entries = await source.range(p, cp, { limit });
        if (entries.length === 0) break;
        const r = await applyBatch(db, entries, { schema, readFrom: new Map([[p, cp]]) });
        total += r.applied;
        o.onProgress?.({ partition: p, applied: r.applied, total });
        if (entries.length < limit) break;
      }
    }
  }
  await o.beforeSwitch?.();
  const previous = await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${READMODEL_LOCK})`.execute(trx);
    const live = (await trx.selectFrom("tributary_readmodel").select("schema_name").where("id", "=", 1).executeTakeFirstOrThrow()).schema_name;
    const liveCps = await liveCheckpoints(trx as unknown as Db, live);
    for (const [p, cp] of liveCps) {
      for (;;) {
        const mine = (await trx.withSchema(schema).selectFrom("checkpoints").select("log_id").where("partition", "=", p).executeTakeFirst())?.log_id ?? "0-0";
        if (compareOffsets(mine, cp.logId) >= 0) break;
        const entries = await source.range(p, mine, { limit, to: cp.logId });
        if (entries.length === 0) throw new Error(`partition ${p}: the log has no entries between ${mine} and the live checkpoint ${cp.logId}`);
        const r = await applyInTransaction(trx, entries, { schema, readFrom: new Map([[p, mine]]) });
        total += r.applied;
      }
    }
    await trx.updateTable("tributary_readmodel").set({ schema_name: schema, switched_at: new Date() }).where("id", "=", 1).execute();
    return live;
  });
  if (!o.keepOld) await dropSchema(db, previous);
  return { schema, previous, applied: total };
}

/** Drop an old read-model schema once no reader or projector batch can still be inside it. */
export async function dropSchema(db: Db, schema: string): Promise<void> {
  if (!/^rm_[a-z0-9_]+$/.test(schema)) throw new Error(`refusing to drop ${schema}: not a read-model schema`);
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${READMODEL_LOCK})`.execute(trx);
    const live = (await trx.selectFrom("tributary_readmodel").select("schema_name").where("id", "=", 1).executeTakeFirstOrThrow()).schema_name;
    if (live === schema) throw new Error(`refusing to drop the live read-model schema ${schema}`);
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(trx);
  });
}
