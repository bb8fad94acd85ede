import { sql, type Transaction } from "kysely";
import { decodeEvent } from "../core/codec.js";
import { compareOffsets } from "../core/envelope.js";
import { errorMessage } from "../core/errors.js";
import type { Db } from "./db.js";
import { addNeeds, emptyFoldState, emptyNeeds, foldEvent, type FoldState, type ProjectedEvent } from "./fold.js";
import type { LogRecord } from "./log-source.js";
import type { Database, RejectRow, SpendDailyRow } from "./schema.js";

/**
 * Applying a batch of partition-log entries to the read models: exactly-once effects (I4).
 *
 * One transaction per batch: lock the batch's partition checkpoints, drop every entry at or below
 * its partition's checkpoint (a redelivered batch is therefore a no-op), fold the rest in memory,
 * write the changed rows and the new checkpoints, commit. Rows and checkpoint commit together or
 * not at all, so a crash at any instant either kept the whole batch or none of it.
 *
 * Precondition: for each partition, the entries above its checkpoint are the complete log range
 * from the checkpoint up (the projector reads them with XRANGE from the checkpoint; see
 * projector.ts for why consumer-group deliveries alone cannot promise that).
 */
export interface ApplyOptions {
  /** Write into this read-model schema instead of the live one (rebuild's shadow copy). */
  schema?: string;
  /**
   * The exclusive lower bound the entries were read from, per partition. If a partition's
   * checkpoint is below it, the range has a hole (someone else's checkpoint moved back): the batch
   * is refused with StaleRangeError and the caller reads again.
   */
  readFrom?: Map<number, string>;
  /**
   * Commit without waiting for the WAL flush (SET LOCAL synchronous_commit = off). Safe here, and the
   * default: rows and checkpoint are lost *together* if Postgres crashes before the flush, and the
   * projector re-reads the log from the checkpoint, never from consumer-group acknowledgements — so
   * a lost commit is re-projected, not skipped. Readers may briefly see the read model step back.
   */
  asyncCommit?: boolean;
}

export interface ApplyResult {
  /** Entries folded into the read models (including rejected ones). */
  applied: number;
  /** Entries at or below their checkpoint: already applied. */
  skipped: number;
  rejected: number;
  /** Checkpoint per partition after the batch. */
  checkpoints: Map<number, string>;
}

export class StaleRangeError extends Error {
  constructor(partition: number, checkpoint: string, readFrom: string) {
    super(`partition ${partition}: checkpoint ${checkpoint} is below the range read from ${readFrom}`);
    this.name = "StaleRangeError";
  }
}

/**
 * Projector transactions hold this advisory lock shared; a rebuild's switch-over holds it
 * exclusively, so no batch commits into the old schema after the switch (rebuild.ts).
 */
export const READMODEL_LOCK = 0x7472_6962;

const STREAM_KEY = /\{p\d+\}:es:([a-z]+):(.+)$/;

export async function applyBatch(db: Db, entries: LogRecord[], opts: ApplyOptions = {}): Promise<ApplyResult> {
  return db.transaction().execute((trx) => applyInTransaction(trx, entries, opts));
}

/** Resolve the schema to write (taking the shared switch lock for the live one). */
export async function targetSchema(trx: Transaction<Database>, schema?: string): Promise<string> {
  if (schema !== undefined) return schema;
  await sql`select pg_advisory_xact_lock_shared(${READMODEL_LOCK})`.execute(trx);
  const r = await trx.selectFrom("tributary_readmodel").select("schema_name").where("id", "=", 1).executeTakeFirst();
  if (!r) throw new Error("no live read-model schema: run `tributary migrate`");
  return r.schema_name;
}

export async function applyInTransaction(trx: Transaction<Database>, entries: LogRecord[], opts: ApplyOptions = {}): Promise<ApplyResult> {
  if (opts.asyncCommit !== false) await sql`set local synchronous_commit = off`.execute(trx);
  const schema = await targetSchema(trx, opts.schema);
  const t = trx.withSchema(schema);
  const result: ApplyResult = { applied: 0, skipped: 0, rejected: 0, checkpoints: new Map() };

  const byPartition = new Map<number, LogRecord[]>();
  for (const e of entries) {
    const list = byPartition.get(e.partition);
    if (list) list.push(e);
    else byPartition.set(e.partition, [e]);
  }
  const partitions = [...byPartition.keys()].sort((a, b) => a - b);
  if (partitions.length === 0) return result;

  // Lock the checkpoints in partition order (no deadlock between two projectors during a hand-over).
  await t
    .insertInto("checkpoints")
    .values(partitions.map((partition) => ({ partition, log_id: "0-0", applied: 0, updated_at: new Date() })))
    .onConflict((oc) => oc.column("partition").doNothing())
    .execute();
  const cps = await t
    .selectFrom("checkpoints")
    .select(["partition", "log_id", "applied"])
    .where("partition", "in", partitions)
    .orderBy("partition")
    .forUpdate()
    .execute();
  const cpOf = new Map(cps.map((c) => [c.partition, c]));

  const fresh: LogRecord[] = [];
  const newCp = new Map<number, { log_id: string; applied: number }>();
  for (const p of partitions) {
    const cp = cpOf.get(p) ?? { partition: p, log_id: "0-0", applied: 0 };
    const from = opts.readFrom?.get(p);
    if (from !== undefined && compareOffsets(cp.log_id, from) < 0) throw new StaleRangeError(p, cp.log_id, from);
    const list = (byPartition.get(p) ?? []).slice().sort((a, b) => compareOffsets(a.id, b.id));
    let last = cp.log_id;
    let count = 0;
    for (const e of list) {
      if (compareOffsets(e.id, last) <= 0) {
        result.skipped++;
        continue;
      }
      fresh.push(e);
      last = e.id;
      count++;
    }
    newCp.set(p, { log_id: last, applied: cp.applied + count });
    result.checkpoints.set(p, last);
  }
  if (fresh.length === 0) return result;

  // Decode; an entry that cannot be decoded is rejected (recorded), never retried forever (I5).
  const rejects: RejectRow[] = [];
  const events: ProjectedEvent[] = [];
  const now = new Date();
  for (const e of fresh) {
    const stream = e.fields.get("k")?.toString("utf8") ?? "";
    try {
      const m = STREAM_KEY.exec(stream);
      if (!m) throw new Error(`field k is not an aggregate stream key: ${JSON.stringify(stream.slice(0, 200))}`);
      const bytes = e.fields.get("e");
      if (!bytes) throw new Error("entry has no field e");
      const rec = decodeEvent(bytes);
      events.push({
        partition: e.partition,
        logId: e.id,
        stream,
        kind: m[1] as string,
        aggregateId: m[2] as string,
        offset: e.fields.get("o")?.toString("utf8") ?? "",
        version: rec.version,
        type: rec.type,
        at: rec.at,
        data: rec.data,
      });
    } catch (err) {
      rejects.push({ partition: e.partition, log_id: e.id, stream, reason: errorMessage(err).slice(0, 1000), at: now });
    }
  }

  const state = await loadRows(t, events);
  for (const ev of events) {
    try {
      foldEvent(state, ev);
    } catch (err) {
      // Folding is deterministic: an event that fails once fails on every replay, so it is
      // recorded and skipped rather than blocking its partition.
      rejects.push({ partition: ev.partition, log_id: ev.logId, stream: ev.stream, reason: errorMessage(err).slice(0, 1000), at: now });
    }
  }

  await writeRows(t, state);
  if (rejects.length > 0) {
    await t.insertInto("rejects").values(rejects).onConflict((oc) => oc.columns(["partition", "log_id"]).doNothing()).execute();
  }
  for (const [partition, c] of newCp) {
    await t.updateTable("checkpoints").set({ log_id: c.log_id, applied: c.applied, updated_at: now }).where("partition", "=", partition).execute();
  }
  result.applied = fresh.length;
  result.rejected = rejects.length;
  return result;
}

type SchemaTrx = ReturnType<Transaction<Database>["withSchema"]>;

async function loadRows(t: SchemaTrx, events: ProjectedEvent[]): Promise<FoldState> {
  const needs = emptyNeeds();
  for (const ev of events) addNeeds(needs, ev);
  const s = emptyFoldState();
  const [convs, msgs, sess, ledgers] = await Promise.all([
    needs.conversations.size ? t.selectFrom("conversations").selectAll().where("id", "in", [...needs.conversations]).execute() : [],
    needs.messages.size ? t.selectFrom("messages").selectAll().where("id", "in", [...needs.messages]).execute() : [],
    needs.sessions.size ? t.selectFrom("sessions").selectAll().where("id", "in", [...needs.sessions]).execute() : [],
    needs.ledgers.size ? t.selectFrom("quota_ledgers").selectAll().where("id", "in", [...needs.ledgers]).execute() : [],
  ]);
  for (const r of convs) s.conversations.set(r.id, r);
  for (const r of msgs) s.messages.set(r.id, r);
  for (const r of sess) s.sessions.set(r.id, r);
  for (const r of ledgers) s.ledgers.set(r.id, r);
  return s;
}

/** Largest number of rows per statement: stays well under Postgres's 65,535 bind parameters. */
const CHUNK = 1000;

function chunks<T>(rows: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += CHUNK) out.push(rows.slice(i, i + CHUNK));
  return out;
}

async function upsertAll<K extends "conversations" | "messages" | "sessions" | "quota_ledgers">(
  t: SchemaTrx,
  table: K,
  rows: Database[K][],
): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0] as object).filter((c) => c !== "id");
  for (const part of chunks(rows)) {
    await t
      .insertInto(table)
      .values(part as never)
      .onConflict((oc) =>
        oc.column("id" as never).doUpdateSet((eb) => Object.fromEntries(columns.map((c) => [c, eb.ref(`excluded.${c}` as never)])) as never),
      )
      .execute();
  }
}

async function writeRows(t: SchemaTrx, s: FoldState): Promise<void> {
  const pick = <T>(m: Map<string, T | null>, ids: Set<string>): T[] => {
    const out: T[] = [];
    for (const id of ids) {
      const r = m.get(id);
      if (r) out.push(r);
    }
    return out;
  };
  await upsertAll(t, "conversations", pick(s.conversations, s.dirty.conversations));
  await upsertAll(t, "messages", pick(s.messages, s.dirty.messages));
  await upsertAll(t, "sessions", pick(s.sessions, s.dirty.sessions));
  await upsertAll(t, "quota_ledgers", pick(s.ledgers, s.dirty.ledgers));
  const spend: SpendDailyRow[] = [...s.spend.values()];
  for (const part of chunks(spend)) {
    // Totals are additive deltas: ON CONFLICT adds, so two batches touching one day/user/model compose.
    await t
      .insertInto("spend_daily")
      .values(part)
      .onConflict((oc) =>
        oc.columns(["tenant_id", "day", "user_id", "model", "project_id"]).doUpdateSet((eb) => ({
          messages: sql<number>`${eb.ref("spend_daily.messages")} + ${eb.ref("excluded.messages")}`,
          input_tokens: sql<number>`${eb.ref("spend_daily.input_tokens")} + ${eb.ref("excluded.input_tokens")}`,
          output_tokens: sql<number>`${eb.ref("spend_daily.output_tokens")} + ${eb.ref("excluded.output_tokens")}`,
          cost_micros: sql<number>`${eb.ref("spend_daily.cost_micros")} + ${eb.ref("excluded.cost_micros")}`,
        })),
      )
      .execute();
  }
}
