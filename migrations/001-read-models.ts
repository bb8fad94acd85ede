import { sql, type Kysely } from "kysely";
import type { ReadModelMigration } from "./types.js";

/**
 * 001: the pointer to the live read-model schema, and the conversation read models with their
 * checkpoint. Read-model tables are created inside a schema of their own (not `public`) so that
 * `projections rebuild` can build a complete second copy next to the live one and switch by
 * updating one row (see projections/rebuild.ts).
 */
export const m001: ReadModelMigration = {
  name: "001-read-models",
  async meta(db: Kysely<unknown>) {
    await sql`create table if not exists tributary_readmodel (
      id int primary key check (id = 1),
      schema_name text not null,
      switched_at timestamptz not null default now()
    )`.execute(db);
    await sql`insert into tributary_readmodel (id, schema_name) values (1, 'rm_1') on conflict (id) do nothing`.execute(db);
    await sql`create schema if not exists rm_1`.execute(db);
  },
  async readModel(db: Kysely<unknown>, schema: string) {
    const s = sql.id(schema);
    await sql`create table ${s}.checkpoints (
      partition int primary key,
      log_id text not null,
      applied bigint not null default 0,
      updated_at timestamptz not null default now()
    )`.execute(db);
    await sql`create table ${s}.rejects (
      partition int not null,
      log_id text not null,
      stream text not null,
      reason text not null,
      at timestamptz not null default now(),
      primary key (partition, log_id)
    )`.execute(db);
    await sql`create table ${s}.conversations (
      id text primary key,
      tenant_id text not null,
      project_id text,
      owner_id text not null,
      title text not null,
      model text not null,
      status text not null,
      message_count int not null default 0,
      reply_count int not null default 0,
      version int not null,
      last_offset text not null,
      last_activity_at timestamptz not null,
      created_at timestamptz not null,
      updated_at timestamptz not null
    )`.execute(db);
    // Listing a user's (or a whole tenant's) conversations newest first with a (created_at, id)
    // cursor: both are index range scans that stop after `limit` rows.
    await sql`create index ${sql.id("conversations_owner_idx")} on ${s}.conversations (tenant_id, owner_id, created_at desc, id desc)`.execute(db);
    await sql`create index ${sql.id("conversations_tenant_idx")} on ${s}.conversations (tenant_id, created_at desc, id desc)`.execute(db);
    await sql`create table ${s}.messages (
      id text primary key,
      conversation_id text not null,
      tenant_id text not null,
      user_id text not null,
      role text not null,
      text text not null,
      status text not null,
      client_message_id text,
      reply_to text,
      model text,
      finish_reason text,
      error_code text,
      input_tokens bigint,
      output_tokens bigint,
      cost_micros bigint,
      delta_count int not null default 0,
      seq int not null,
      created_at timestamptz not null,
      updated_at timestamptz not null
    )`.execute(db);
    await sql`create index ${sql.id("messages_conversation_idx")} on ${s}.messages (conversation_id, seq, id)`.execute(db);
    await sql`create table ${s}.spend_daily (
      tenant_id text not null,
      project_id text not null,
      user_id text not null,
      model text not null,
      day date not null,
      messages bigint not null,
      input_tokens bigint not null,
      output_tokens bigint not null,
      cost_micros bigint not null,
      primary key (tenant_id, day, user_id, model, project_id)
    )`.execute(db);
    // The spend report reads (tenant, day range) and sums; INCLUDE makes it an index-only scan.
    // The per-user variant (one user's 30 days) gets its own leading columns.
    await sql`create index ${sql.id("spend_daily_tenant_day_idx")} on ${s}.spend_daily (tenant_id, day)
      include (user_id, model, project_id, messages, input_tokens, output_tokens, cost_micros)`.execute(db);
    await sql`create index ${sql.id("spend_daily_user_day_idx")} on ${s}.spend_daily (tenant_id, user_id, day)
      include (model, project_id, messages, input_tokens, output_tokens, cost_micros)`.execute(db);
  },
};
