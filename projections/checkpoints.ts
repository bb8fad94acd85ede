import type { Db } from "./db.js";

/** The live schema's checkpoints (a hint outside a batch transaction: they only ever move forward). */
export async function liveCheckpoints(db: Db, schema?: string): Promise<Map<number, { logId: string; applied: number; updatedAt: Date }>> {
  const s = schema ?? (await db.selectFrom("tributary_readmodel").select("schema_name").where("id", "=", 1).executeTakeFirstOrThrow()).schema_name;
  const rows = await db.withSchema(s).selectFrom("checkpoints").selectAll().execute();
  return new Map(rows.map((r) => [r.partition, { logId: r.log_id, applied: r.applied, updatedAt: r.updated_at }]));
}
