import { decodeEvent } from "../core/codec.js";
import { ConversationEvents } from "../core/events/conversation.js";
import type { Db } from "./db.js";
import { spendKey, utcDay } from "./fold.js";
import type { LogSource } from "./log-source.js";
import type { SpendDailyRow } from "./schema.js";

/**
 * `tributary reconcile`: recompute spend totals from the event log and compare them with
 * spend_daily. Deliberately a second, minimal implementation (not the projector's fold): it only
 * follows what spend needs — a conversation's tenant/project, a reply's user and model — so a bug
 * or a double-count in the projector shows up as a difference instead of being reproduced.
 *
 * Consistency: spend_daily and the checkpoints are read in one snapshot, and the log is recomputed
 * exactly up to those checkpoints, so a projector running meanwhile causes no false difference.
 */
export interface SpendDifference {
  key: Pick<SpendDailyRow, "tenant_id" | "project_id" | "user_id" | "model" | "day">;
  expected: Totals | null;
  actual: Totals | null;
}
type Totals = Pick<SpendDailyRow, "messages" | "input_tokens" | "output_tokens" | "cost_micros">;

export interface ReconcileResult {
  events: number;
  rows: number;
  differences: SpendDifference[];
}

const STREAM_KEY = /\{p\d+\}:es:conversation:(.+)$/;

export async function reconcile(db: Db, source: LogSource, o: { partitions: number; tenantId?: string; pageSize?: number }): Promise<ReconcileResult> {
  const snapshot = await db
    .transaction()
    .setIsolationLevel("repeatable read")
    .execute(async (trx) => {
      const schema = (await trx.selectFrom("tributary_readmodel").select("schema_name").where("id", "=", 1).executeTakeFirstOrThrow()).schema_name;
      const t = trx.withSchema(schema);
      const cps = await t.selectFrom("checkpoints").select(["partition", "log_id"]).execute();
      let q = t.selectFrom("spend_daily").selectAll();
      if (o.tenantId !== undefined) q = q.where("tenant_id", "=", o.tenantId);
      const rows = await q.execute();
      const rejected = await t.selectFrom("rejects").select(["partition", "log_id"]).execute();
      return { cps: new Map(cps.map((c) => [c.partition, c.log_id])), rows, rejected: new Set(rejected.map((r) => `${r.partition}/${r.log_id}`)) };
    });

  const expected = new Map<string, SpendDailyRow>();
  let events = 0;
  for (let p = 0; p < o.partitions; p++) {
    const upTo = snapshot.cps.get(p);
    if (!upTo || upTo === "0-0") continue;
    const convs = new Map<string, { tenant: string; project: string; owner: string; model: string }>();
    const users = new Map<string, string>();
    const replies = new Map<string, { user: string; model: string }>();
    let after = "0-0";
    for (;;) {
      const page = await source.range(p, after, { limit: o.pageSize ?? 2000, to: upTo });
      for (const entry of page) {
        after = entry.id;
        if (snapshot.rejected.has(`${p}/${entry.id}`)) continue;
        const m = STREAM_KEY.exec(entry.fields.get("k")?.toString("utf8") ?? "");
        const bytes = entry.fields.get("e");
        if (!m || !bytes) continue;
        events++;
        const cid = m[1] as string;
        const ev = decodeEvent(bytes);
        switch (ev.type) {
          case "conversation.created": {
            const d = ConversationEvents["conversation.created"].parse(ev.data);
            convs.set(cid, { tenant: d.tenantId, project: d.projectId ?? "", owner: d.ownerId, model: d.model });
            break;
          }
          case "message.received": {
            const d = ConversationEvents["message.received"].parse(ev.data);
            users.set(d.messageId, d.userId);
            break;
          }
          case "assistant.started": {
            const d = ConversationEvents["assistant.started"].parse(ev.data);
            const c = convs.get(cid);
            replies.set(d.messageId, { user: users.get(d.replyTo) ?? c?.owner ?? "", model: d.model });
            break;
          }
          case "assistant.completed":
          case "assistant.cancelled":
          case "assistant.failed": {
            const d = ConversationEvents[ev.type].parse(ev.data);
            const c = convs.get(cid);
            if (!c) break;
            const r = replies.get(d.messageId) ?? { user: c.owner, model: c.model };
            if (o.tenantId !== undefined && c.tenant !== o.tenantId) break;
            const key = { tenant_id: c.tenant, project_id: c.project, user_id: r.user, model: r.model, day: utcDay(ev.at) };
            const k = spendKey(key);
            const row = expected.get(k) ?? { ...key, messages: 0, input_tokens: 0, output_tokens: 0, cost_micros: 0 };
            row.messages += 1;
            row.input_tokens += d.usage.inputTokens;
            row.output_tokens += d.usage.outputTokens;
            row.cost_micros += d.costMicros;
            expected.set(k, row);
            break;
          }
        }
      }
      if (page.length < (o.pageSize ?? 2000)) break;
    }
  }

  const differences: SpendDifference[] = [];
  const totals = (r: SpendDailyRow): Totals => ({ messages: r.messages, input_tokens: r.input_tokens, output_tokens: r.output_tokens, cost_micros: r.cost_micros });
  const keyOf = (r: SpendDailyRow) => ({ tenant_id: r.tenant_id, project_id: r.project_id, user_id: r.user_id, model: r.model, day: r.day });
  const actual = new Map(snapshot.rows.map((r) => [spendKey(r), r]));
  for (const [k, e] of expected) {
    const a = actual.get(k);
    if (!a || JSON.stringify(totals(a)) !== JSON.stringify(totals(e))) differences.push({ key: keyOf(e), expected: totals(e), actual: a ? totals(a) : null });
  }
  for (const [k, a] of actual) if (!expected.has(k)) differences.push({ key: keyOf(a), expected: null, actual: totals(a) });
  return { events, rows: snapshot.rows.length, differences };
}
