import type { ColumnType } from "kysely";

/**
 * The read models' row types, as kysely sees them. Column names are the SQL names (snake_case), so
 * rows loaded for a batch can be folded and written back without a mapping layer.
 *
 * Every read-model table lives in the schema named by `public.tributary_readmodel` (see
 * readmodel-schema.ts): a rebuild fills a fresh schema and switches the pointer atomically.
 * int8 columns are `number` on both targets (int8.ts); `day` columns are 'YYYY-MM-DD' strings.
 */
type Ts = ColumnType<Date, Date | string, Date | string>;

export interface ConversationRow {
  id: string;
  tenant_id: string;
  project_id: string | null;
  owner_id: string;
  title: string;
  model: string;
  /** idle | replying | archived */
  status: string;
  message_count: number;
  reply_count: number;
  /** Conversation stream version of the last event folded in. */
  version: number;
  last_offset: string;
  last_activity_at: Date;
  created_at: Date;
  updated_at: Date;
}

export interface MessageRow {
  id: string;
  conversation_id: string;
  tenant_id: string;
  /** The user who sent it (user messages) or whose message it answers (assistant replies). */
  user_id: string;
  role: "user" | "assistant";
  text: string;
  /** received (user) · streaming | completed | cancelled | failed (assistant) */
  status: string;
  client_message_id: string | null;
  reply_to: string | null;
  model: string | null;
  finish_reason: string | null;
  error_code: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_micros: number | null;
  /** Next expected delta index; a delta below it is a replay and is ignored. */
  delta_count: number;
  /** Conversation version of the event that created the message: the display order. */
  seq: number;
  created_at: Date;
  updated_at: Date;
}

export interface SpendDailyRow {
  tenant_id: string;
  /** '' when the conversation has no project (a primary key column cannot be NULL). */
  project_id: string;
  user_id: string;
  model: string;
  day: string;
  messages: number;
  input_tokens: number;
  output_tokens: number;
  cost_micros: number;
}

export interface SessionRow {
  id: string;
  tenant_id: string;
  user_id: string;
  tier: string;
  transport: string;
  /** open | closed */
  status: string;
  close_reason: string | null;
  resume_count: number;
  version: number;
  opened_at: Date;
  last_seen_at: Date;
  closed_at: Date | null;
}

export interface QuotaLedgerRow {
  /** The ledger aggregate id (userLedgerId / projectLedgerId). */
  id: string;
  scope: "user" | "project";
  tenant_id: string;
  user_id: string | null;
  project_id: string | null;
  tier: string | null;
  daily_tokens: number | null;
  daily_micros: number | null;
  max_concurrent: number | null;
  used_tokens: number;
  used_micros: number;
  reserved_tokens: number;
  reserved_micros: number;
  topup_tokens: number;
  topup_micros: number;
  open_reservations: number;
  day: string | null;
  resets_at: Date | null;
  version: number;
  updated_at: Date;
}

export interface CheckpointRow {
  partition: number;
  /** Last partition-log entry id applied ("0-0" = none). */
  log_id: string;
  /** How many log entries have been applied (lag = XINFO entries-added − applied). */
  applied: number;
  updated_at: Date;
}

/** Entries that can never be projected (undecodable, schema-invalid): recorded, skipped, never blocking. */
export interface RejectRow {
  partition: number;
  log_id: string;
  stream: string;
  reason: string;
  at: Date;
}

export interface ReadModelPointerRow {
  id: number;
  schema_name: string;
  switched_at: Ts;
}

export interface Database {
  conversations: ConversationRow;
  messages: MessageRow;
  spend_daily: SpendDailyRow;
  sessions: SessionRow;
  quota_ledgers: QuotaLedgerRow;
  checkpoints: CheckpointRow;
  rejects: RejectRow;
  tributary_readmodel: ReadModelPointerRow;
}

/** Names accepted by `projections rebuild [name]`. */
export const READ_MODELS = ["conversations", "messages", "sessions", "quota_ledgers", "spend_daily"] as const;
export type ReadModelName = (typeof READ_MODELS)[number];
