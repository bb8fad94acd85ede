import { sql } from "kysely";
import type { Db } from "./db.js";
import { READ_MODELS } from "./schema.js";

/**
 * Every read-model row of one schema, in a stable order: what "equal row for row" means for
 * rebuilds, redelivery and the kill test. Checkpoints are left out on purpose (two copies built
 * from different batchings agree on rows, and on checkpoints only once both are caught up).
 */
export type ReadModelDump = Record<string, Array<Record<string, unknown>>>;

const ORDER: Record<string, string> = {
  conversations: "id",
  messages: "id",
  sessions: "id",
  quota_ledgers: "id",
  spend_daily: "tenant_id, day, user_id, model, project_id",
};

export async function dumpReadModels(db: Db, schema: string): Promise<ReadModelDump> {
  const out: ReadModelDump = {};
  for (const table of READ_MODELS) {
    const r = await sql<Record<string, unknown>>`select * from ${sql.id(schema, table)} order by ${sql.raw(ORDER[table] ?? "1")}`.execute(db);
    out[table] = r.rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v])));
  }
  return out;
}
