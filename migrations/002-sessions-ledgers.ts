import { sql, type Kysely } from "kysely";
import type { ReadModelMigration } from "./types.js";

/** 002: sessions and quota ledgers (user token ledgers and project budgets), CONTRACT §3 /v1/quota. */
export const m002: ReadModelMigration = {
  name: "002-sessions-ledgers",
  async readModel(db: Kysely<unknown>, schema: string) {
    const s = sql.id(schema);
    await sql`create table ${s}.sessions (
      id text primary key,
      tenant_id text not null,
      user_id text not null,
      tier text not null,
      transport text not null,
      status text not null,
      close_reason text,
      resume_count int not null default 0,
      version int not null,
      opened_at timestamptz not null,
      last_seen_at timestamptz not null,
      closed_at timestamptz
    )`.execute(db);
    await sql`create index ${sql.id("sessions_user_idx")} on ${s}.sessions (tenant_id, user_id, opened_at desc)`.execute(db);
    await sql`create table ${s}.quota_ledgers (
      id text primary key,
      scope text not null,
      tenant_id text not null,
      user_id text,
      project_id text,
      tier text,
      daily_tokens bigint,
      daily_micros bigint,
      max_concurrent int,
      used_tokens bigint not null default 0,
      used_micros bigint not null default 0,
      reserved_tokens bigint not null default 0,
      reserved_micros bigint not null default 0,
      topup_tokens bigint not null default 0,
      topup_micros bigint not null default 0,
      open_reservations int not null default 0,
      day date,
      resets_at timestamptz,
      version int not null,
      updated_at timestamptz not null
    )`.execute(db);
    await sql`create unique index ${sql.id("quota_ledgers_user_idx")} on ${s}.quota_ledgers (tenant_id, user_id) where scope = 'user'`.execute(db);
  },
};
