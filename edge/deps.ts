import type { Config } from "../core/config.js";
import type { Envelope } from "../core/envelope.js";
import type { Logger } from "../core/logger.js";
import type { RedisClient } from "../core/redis/connection.js";
import type { AccessChecker } from "./access.js";
import type { OperationsDeps } from "./console/operations.js";
import type { Authenticator } from "./auth/verifier.js";
import type { Tier } from "./auth/principal.js";
import type { Gateway } from "./gateway/gateway.js";
import type { EdgeMetrics } from "./metrics.js";

/**
 * What the edge needs from the rest of the system, as interfaces. The actor runtime implements
 * `Commands`, the projections implement `ReadModels`; the edge is built and tested against these
 * shapes only, so either side can change inside without touching routes.
 */

// ---- commands (actors/runtime) -------------------------------------------------------------

export interface CreateConversationInput {
  tenantId: string;
  userId: string;
  projectId: string | undefined;
  title?: string | undefined;
  model?: string | undefined;
  /** `Idempotency-Key` header: the same key answers the same conversation. */
  idempotencyKey?: string | undefined;
}

/** CONTRACT §3 `POST /v1/conversations` 201 body. */
export interface CreatedConversation {
  id: string;
  title: string;
  model: string;
  createdAt: string;
}

export interface PostMessageInput {
  conversationId: string;
  tenantId: string;
  userId: string;
  tier: Tier;
  text: string;
  clientMessageId: string;
  maxTokens?: number | undefined;
  /** For logs and event metadata. */
  requestId?: string | undefined;
}

/** CONTRACT §3 `POST …/messages`: 201 (first answer) / 200 (repeat), or 202 after 5 s without a decision. */
export type PostMessageResult =
  | { kind: "accepted"; status: 201 | 200; body: { messageId: string; replyId: string; offset: string } }
  | { kind: "pending"; body: { commandId: string; status: "pending" } };

export interface CancelInput {
  conversationId: string;
  tenantId: string;
  userId: string;
  /** The caller's roles: a tenant admin may cancel another user's reply, and the actor checks again. */
  roles?: string[] | undefined;
}

export interface SetQuotaInput {
  tenantId: string;
  userId: string;
  tier?: Tier | undefined;
  dailyTokens?: number | undefined;
  maxConcurrent?: number | undefined;
  topUpTokens?: number | undefined;
}

/** CONTRACT §3 `GET /v1/quota` body. */
export interface LedgerView {
  tier: Tier;
  limits: { dailyTokens: number; maxConcurrent: number };
  used: { tokens: number; costMicros: number };
  reserved: { tokens: number };
  remaining: { tokens: number };
  resetsAt: string;
}

/**
 * Every method throws TributaryError with the contract's code when the actor rejects the command
 * (CONFLICT, QUOTA_EXCEEDED, CONCURRENCY_LIMIT, NOT_FOUND, …); the edge maps it to HTTP as is.
 */
export interface Commands {
  createConversation(input: CreateConversationInput): Promise<CreatedConversation>;
  postMessage(input: PostMessageInput): Promise<PostMessageResult>;
  cancel(input: CancelInput): Promise<{ cancelled: boolean }>;
  setQuota(input: SetQuotaInput): Promise<LedgerView>;
  /** `tier` = the caller's token tier, shown for a ledger that was never configured. */
  getLedger(input: { tenantId: string; userId: string; tier?: Tier | undefined }): Promise<LedgerView>;
}

// ---- read models (projections/queries.ts) --------------------------------------------------

export interface ConversationSummary {
  id: string;
  title: string;
  model: string;
  ownerId: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  [extra: string]: unknown;
}

export interface ConversationPage {
  items: ConversationSummary[];
  nextCursor: string | null;
}

export interface MessageView {
  id: string;
  role: "user" | "assistant";
  text: string;
  status: "received" | "streaming" | "completed" | "cancelled" | "failed";
  createdAt: string;
  usage?: { inputTokens: number; outputTokens: number };
}

/** CONTRACT §3 `GET /v1/conversations/:id` body. */
export interface ConversationDetail {
  id: string;
  title: string;
  model: string;
  ownerId: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  messages: MessageView[];
}

export type SpendGroupBy = "user" | "model" | "day" | "project";

export interface SpendTotals {
  messages: number;
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
}

/** CONTRACT §3 `GET /v1/spend` body; each row carries its `<groupBy>` key. */
export interface SpendReport {
  rows: Array<SpendTotals & Record<string, string | number | null>>;
  totals: SpendTotals;
}

export interface ReadModels {
  /**
   * Conversations of a tenant, newest activity first. `ownerId` undefined = every conversation of
   * the tenant (auditors, admins). The cursor is opaque to the edge.
   */
  listConversations(q: { tenantId: string; ownerId: string | undefined; limit: number; cursor: string | undefined }): Promise<ConversationPage>;
  /** One conversation of the tenant, or undefined. The edge has already checked access (I9). */
  getConversation(q: { tenantId: string; conversationId: string }): Promise<ConversationDetail | undefined>;
  /** `from` / `to` are inclusive UTC days, `YYYY-MM-DD`. */
  spend(q: { tenantId: string; from: string; to: string; groupBy: SpendGroupBy }): Promise<SpendReport>;
}

// ---- events (event store) ------------------------------------------------------------------

export interface EventPage {
  events: Envelope[];
  /** The `from` of the next page; null once this page reached the end of the stream. */
  nextOffset: string | null;
}

/** `GET …/events?format=json`: a page of a conversation's events after `from` (exclusive). */
export interface EventReader {
  page(conversationId: string, from: string, limit: number): Promise<EventPage>;
}

// ---- health --------------------------------------------------------------------------------

/** One `/readyz` check; resolves when healthy, rejects (or times out) otherwise. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

// ---- the whole ----------------------------------------------------------------------------

export interface EdgeDeps {
  config: Config;
  log: Logger;
  /** Shared non-blocking client (rate limits, access checks, XRANGE, XLEN). */
  redis: RedisClient;
  auth: Authenticator;
  access: AccessChecker;
  commands: Commands;
  readModels: ReadModels;
  events: EventReader;
  metrics: EdgeMetrics;
  /** Breaker, backpressure and rate limits; Socket.IO's chat_message passes the same gate. */
  gateway: Gateway;
  /** `/readyz` checks; also feed the breaker. Redis is always among them. */
  checks: ReadinessCheck[];
  /** History across the archive and projection lag, for the state route and the console (edge/console). */
  operations?: OperationsDeps | undefined;
}
