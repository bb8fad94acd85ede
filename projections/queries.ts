import { sql, type Transaction } from "kysely";
import { z } from "zod";
import { TributaryError } from "../core/errors.js";
import type { Db } from "./db.js";
import { READMODEL_LOCK } from "./apply.js";
import type { Database } from "./schema.js";

/**
 * The read side the edge calls (CONTRACT §3): conversations, one conversation with its messages,
 * the caller's quota ledger and the spend report. Tenant scoping is a parameter of every query, never
 * an afterthought (I9): a conversation of another tenant is simply not found.
 *
 * Each query runs in a short transaction that holds the read-model lock shared and reads the live
 * schema's name, so a rebuild's switch-over never drops a schema under a running query.
 */
async function withLive<T>(db: Db, fn: (t: ReturnType<Transaction<Database>["withSchema"]>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock_shared(${READMODEL_LOCK})`.execute(trx);
    const r = await trx.selectFrom("tributary_readmodel").select("schema_name").where("id", "=", 1).executeTakeFirst();
    if (!r) throw new TributaryError("UNAVAILABLE", "read models not migrated: run `tributary migrate`");
    return fn(trx.withSchema(r.schema_name));
  });
}

const id = z.string().min(1).max(256);

// ── conversations ─────────────────────────────────────────────────────────────

export interface ConversationListItem {
  id: string;
  title: string;
  model: string;
  ownerId: string;
  projectId: string | null;
  status: string;
  messageCount: number;
  createdAt: string;
  updatedAt: string;
  lastActivityAt: string;
}

export interface ConversationPage {
  items: ConversationListItem[];
  /** Opaque; pass back as `cursor` for the next page. null on the last page. */
  nextCursor: string | null;
}

export const ListConversationsQuery = z.object({
  tenantId: id,
  /** Only this owner's conversations; omit for every conversation of the tenant (auditor, admin). */
  userId: id.optional(),
  limit: z.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
});
export type ListConversationsInput = z.input<typeof ListConversationsQuery>;

const CursorSchema = z.tuple([z.string().datetime(), id]);

function encodeCursor(createdAt: Date, convId: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), convId])).toString("base64url");
}

function decodeCursor(cursor: string): [string, string] {
  try {
    return CursorSchema.parse(JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")));
  } catch {
    throw new TributaryError("BAD_REQUEST", "invalid cursor");
  }
}

/** Newest first; keyset pagination on (created_at, id) so pages never skip or repeat a row. */
export async function listConversations(db: Db, input: ListConversationsInput): Promise<ConversationPage> {
  const q = ListConversationsQuery.parse(input);
  const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  return withLive(db, async (t) => {
    let sel = t.selectFrom("conversations").selectAll().where("tenant_id", "=", q.tenantId);
    if (q.userId !== undefined) sel = sel.where("owner_id", "=", q.userId);
    if (after) sel = sel.where(sql<boolean>`(created_at, id) < (${after[0]}::timestamptz, ${after[1]})`);
    const rows = await sel.orderBy("created_at", "desc").orderBy("id", "desc").limit(q.limit + 1).execute();
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({
        id: r.id,
        title: r.title,
        model: r.model,
        ownerId: r.owner_id,
        projectId: r.project_id,
        status: r.status,
        messageCount: r.message_count,
        createdAt: r.created_at.toISOString(),
        updatedAt: r.updated_at.toISOString(),
        lastActivityAt: r.last_activity_at.toISOString(),
      })),
      nextCursor: rows.length > q.limit && last ? encodeCursor(last.created_at, last.id) : null,
    };
  });
}

export interface MessageView {
  id: string;
  role: "user" | "assistant";
  text: string;
  status: string;
  createdAt: string;
  usage?: { inputTokens: number; outputTokens: number };
}

export interface ConversationDetail {
  id: string;
  title: string;
  model: string;
  ownerId: string;
  tenantId: string;
  projectId: string | null;
  status: string;
  createdAt: string;
  updatedAt: string;
  messages: MessageView[];
}

/** CONTRACT §3 GET /v1/conversations/:id; null when absent or of another tenant (→ 404, never 403). */
export async function getConversation(db: Db, conversationId: string, tenantId: string): Promise<ConversationDetail | null> {
  id.parse(conversationId);
  id.parse(tenantId);
  return withLive(db, async (t) => {
    const c = await t.selectFrom("conversations").selectAll().where("id", "=", conversationId).where("tenant_id", "=", tenantId).executeTakeFirst();
    if (!c) return null;
    const msgs = await t.selectFrom("messages").selectAll().where("conversation_id", "=", conversationId).orderBy("seq").orderBy("id").execute();
    return {
      id: c.id,
      title: c.title,
      model: c.model,
      ownerId: c.owner_id,
      tenantId: c.tenant_id,
      projectId: c.project_id,
      status: c.status,
      createdAt: c.created_at.toISOString(),
      updatedAt: c.updated_at.toISOString(),
      messages: msgs.map((m) => {
        const v: MessageView = { id: m.id, role: m.role, text: m.text, status: m.status, createdAt: m.created_at.toISOString() };
        if (m.input_tokens !== null && m.output_tokens !== null) v.usage = { inputTokens: m.input_tokens, outputTokens: m.output_tokens };
        return v;
      }),
    };
  });
}

// ── quota ─────────────────────────────────────────────────────────────────────

export interface QuotaBody {
  tier: string;
  limits: { dailyTokens: number; maxConcurrent: number };
  used: { tokens: number; costMicros: number };
  reserved: { tokens: number };
  remaining: { tokens: number };
  resetsAt: string;
}

/** Defaults for a user whose ledger has no event yet (the tier defaults from configuration). */
export interface QuotaDefaults {
  tier: string;
  dailyTokens: number;
  maxConcurrent: number;
}

const nextUtcMidnight = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));

/**
 * CONTRACT §3 GET /v1/quota from the ledger read model. `remaining` = daily limit + top-up balance −
 * used − reserved, never below 0. A ledger whose day has passed without a reset event yet (the
 * actor resets on its next use) reports today's usage as 0, as the ledger will once it resets.
 * Returns null when the user has no ledger and no defaults are given.
 */
export async function getQuota(db: Db, tenantId: string, userId: string, defaults?: QuotaDefaults, now = new Date()): Promise<QuotaBody | null> {
  id.parse(tenantId);
  id.parse(userId);
  const row = await withLive(db, (t) =>
    t.selectFrom("quota_ledgers").selectAll().where("tenant_id", "=", tenantId).where("user_id", "=", userId).where("scope", "=", "user").executeTakeFirst(),
  );
  const resetsAtDefault = nextUtcMidnight(now);
  if (!row) {
    if (!defaults) return null;
    return {
      tier: defaults.tier,
      limits: { dailyTokens: defaults.dailyTokens, maxConcurrent: defaults.maxConcurrent },
      used: { tokens: 0, costMicros: 0 },
      reserved: { tokens: 0 },
      remaining: { tokens: defaults.dailyTokens },
      resetsAt: resetsAtDefault.toISOString(),
    };
  }
  const stale = row.resets_at ? row.resets_at.getTime() <= now.getTime() : row.updated_at.getTime() < nextUtcMidnight(now).getTime() - 86_400_000;
  const usedTokens = stale ? 0 : row.used_tokens;
  const usedMicros = stale ? 0 : row.used_micros;
  const daily = row.daily_tokens ?? defaults?.dailyTokens ?? 0;
  return {
    tier: row.tier ?? defaults?.tier ?? "anonymous",
    limits: { dailyTokens: daily, maxConcurrent: row.max_concurrent ?? defaults?.maxConcurrent ?? 1 },
    used: { tokens: usedTokens, costMicros: usedMicros },
    reserved: { tokens: row.reserved_tokens },
    remaining: { tokens: Math.max(0, daily + row.topup_tokens - usedTokens - row.reserved_tokens) },
    resetsAt: (stale || !row.resets_at ? resetsAtDefault : row.resets_at).toISOString(),
  };
}

// ── spend ─────────────────────────────────────────────────────────────────────

export const SPEND_GROUPS = ["user", "model", "day", "project"] as const;
export type SpendGroupBy = (typeof SPEND_GROUPS)[number];

const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "expected YYYY-MM-DD")
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), "not a calendar date");

export const SpendQuery = z
  .object({
    /** Omitted only by the operator CLI (every tenant); rows then carry `tenantId`. */
    tenantId: id.optional(),
    /** One user's spend (the per-user report). */
    userId: id.optional(),
    from: isoDate,
    to: isoDate,
    groupBy: z.enum(SPEND_GROUPS),
  })
  .refine((q) => q.from <= q.to, { message: "from must not be after to", path: ["to"] });
export type SpendInput = z.input<typeof SpendQuery>;

export interface SpendTotals {
  messages: number;
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
}
export type SpendRowOut = SpendTotals & { tenantId?: string } & Partial<Record<SpendGroupBy, string | null>>;
export interface SpendBody {
  rows: SpendRowOut[];
  totals: SpendTotals;
}

const GROUP_COLUMN: Record<SpendGroupBy, "user_id" | "model" | "day" | "project_id"> = {
  user: "user_id",
  model: "model",
  day: "day",
  project: "project_id",
};

/**
 * CONTRACT §3 GET /v1/spend: both dates inclusive (UTC days). One index range scan over
 * spend_daily (tenant, day) — or (tenant, user, day) for one user — with an index-only aggregate;
 * see docs/projections.md for the plans. Sums are cast back to int8 so they stay exact integers.
 */
export async function spend(db: Db, input: SpendInput): Promise<SpendBody> {
  const q = SpendQuery.parse(input);
  const col = GROUP_COLUMN[q.groupBy];
  const rows = await withLive(db, async (t) => {
    let sel = t
      .selectFrom("spend_daily")
      .select((eb) => [
        eb.ref("tenant_id").as("tenant_id"),
        sql<string>`${sql.ref(col)}::text`.as("key"),
        sql<number>`sum(messages)::int8`.as("messages"),
        sql<number>`sum(input_tokens)::int8`.as("input_tokens"),
        sql<number>`sum(output_tokens)::int8`.as("output_tokens"),
        sql<number>`sum(cost_micros)::int8`.as("cost_micros"),
      ])
      .where("day", ">=", q.from)
      .where("day", "<=", q.to);
    if (q.tenantId !== undefined) sel = sel.where("tenant_id", "=", q.tenantId);
    if (q.userId !== undefined) sel = sel.where("user_id", "=", q.userId);
    return sel.groupBy(["tenant_id", sql.ref(col) as never]).orderBy("tenant_id").orderBy(sql.ref(col) as never).execute();
  });
  const totals: SpendTotals = { messages: 0, inputTokens: 0, outputTokens: 0, costMicros: 0 };
  const out: SpendRowOut[] = rows.map((r) => {
    totals.messages += r.messages;
    totals.inputTokens += r.input_tokens;
    totals.outputTokens += r.output_tokens;
    totals.costMicros += r.cost_micros;
    const key = q.groupBy === "project" && r.key === "" ? null : r.key;
    const row: SpendRowOut = { [q.groupBy]: key, messages: r.messages, inputTokens: r.input_tokens, outputTokens: r.output_tokens, costMicros: r.cost_micros };
    return q.tenantId === undefined ? { tenantId: r.tenant_id, ...row } : row;
  });
  return { rows: out, totals };
}
