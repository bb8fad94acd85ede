import { ConversationEvents, isConversationEventType } from "../core/events/conversation.js";
import { LedgerEvents, isLedgerEventType, parseLedgerId } from "../core/events/ledger.js";
import { SessionEvents, isSessionEventType } from "../core/events/session.js";
import type { ConversationRow, MessageRow, QuotaLedgerRow, SessionRow, SpendDailyRow } from "./schema.js";

/**
 * The projection logic, pure: events in, rows out. No I/O here (STYLE §3): apply.ts loads the rows
 * a batch touches, folds the batch through `foldEvent` in memory, and writes the changed rows back
 * in a handful of multi-row statements. That is what keeps the projector near the raw insert rate:
 * a reply's hundred deltas become one row write per batch, not a hundred UPDATEs.
 */
export interface ProjectedEvent {
  partition: number;
  /** Entry id in the partition log. */
  logId: string;
  /** Aggregate stream key, e.g. "{p3}:es:conversation:abc". */
  stream: string;
  kind: string;
  aggregateId: string;
  /** Entry id in the aggregate stream (the envelope offset). */
  offset: string;
  version: number;
  type: string;
  at: string;
  data: unknown;
}

/** An event that can never be projected (bad data, unknown aggregate): recorded and skipped. */
export class RejectedEvent extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RejectedEvent";
  }
}

/** Rows a batch works on. `null` = looked up and absent; a missing key = not loaded. */
export interface FoldState {
  conversations: Map<string, ConversationRow | null>;
  messages: Map<string, MessageRow | null>;
  sessions: Map<string, SessionRow | null>;
  ledgers: Map<string, QuotaLedgerRow | null>;
  dirty: { conversations: Set<string>; messages: Set<string>; sessions: Set<string>; ledgers: Set<string> };
  /** Additive deltas for spend_daily, by spendKey(). */
  spend: Map<string, SpendDailyRow>;
}

export function emptyFoldState(): FoldState {
  return {
    conversations: new Map(),
    messages: new Map(),
    sessions: new Map(),
    ledgers: new Map(),
    dirty: { conversations: new Set(), messages: new Set(), sessions: new Set(), ledgers: new Set() },
    spend: new Map(),
  };
}

export interface Needs {
  conversations: Set<string>;
  messages: Set<string>;
  sessions: Set<string>;
  ledgers: Set<string>;
}

/** Which stored rows folding `ev` may read (collected for a whole batch, then loaded in one query each). */
export function addNeeds(needs: Needs, ev: ProjectedEvent): void {
  if (ev.kind === "conversation") {
    needs.conversations.add(ev.aggregateId);
    const d = ev.data as { messageId?: unknown; replyTo?: unknown } | null;
    if (d && typeof d.messageId === "string") needs.messages.add(d.messageId);
    if (d && typeof d.replyTo === "string") needs.messages.add(d.replyTo);
  } else if (ev.kind === "session") needs.sessions.add(ev.aggregateId);
  else if (ev.kind === "ledger") needs.ledgers.add(ev.aggregateId);
}

export function emptyNeeds(): Needs {
  return { conversations: new Set(), messages: new Set(), sessions: new Set(), ledgers: new Set() };
}

/** UTC day of an ISO timestamp: the day a reply's spend is booked on. */
export function utcDay(at: string): string {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) throw new RejectedEvent(`bad timestamp ${JSON.stringify(at)}`);
  return d.toISOString().slice(0, 10);
}

export const spendKey = (r: Pick<SpendDailyRow, "tenant_id" | "project_id" | "user_id" | "model" | "day">): string =>
  JSON.stringify([r.tenant_id, r.project_id, r.user_id, r.model, r.day]);

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { message: string } } }, ev: ProjectedEvent): T {
  const r = schema.safeParse(ev.data);
  if (!r.success) throw new RejectedEvent(`${ev.type}: invalid data: ${r.error.message.slice(0, 500)}`);
  return r.data;
}

/** Fold one event into the batch state. Events of unknown types are ignored (the contract only grows). */
export function foldEvent(s: FoldState, ev: ProjectedEvent): void {
  if (ev.kind === "conversation") foldConversation(s, ev);
  else if (ev.kind === "session") foldSession(s, ev);
  else if (ev.kind === "ledger") foldLedger(s, ev);
}

function addSpend(s: FoldState, conv: ConversationRow, msg: MessageRow, usage: { inputTokens: number; outputTokens: number }, costMicros: number, at: string): void {
  const row: SpendDailyRow = {
    tenant_id: conv.tenant_id,
    project_id: conv.project_id ?? "",
    user_id: msg.user_id,
    model: msg.model ?? conv.model,
    day: utcDay(at),
    messages: 1,
    input_tokens: usage.inputTokens,
    output_tokens: usage.outputTokens,
    cost_micros: costMicros,
  };
  const k = spendKey(row);
  const prev = s.spend.get(k);
  if (!prev) s.spend.set(k, row);
  else {
    prev.messages += 1;
    prev.input_tokens += row.input_tokens;
    prev.output_tokens += row.output_tokens;
    prev.cost_micros += row.cost_micros;
  }
}

function foldConversation(s: FoldState, ev: ProjectedEvent): void {
  const type = ev.type;
  if (!isConversationEventType(type)) return;
  const at = new Date(ev.at);
  if (Number.isNaN(at.getTime())) throw new RejectedEvent(`bad timestamp ${JSON.stringify(ev.at)}`);
  const id = ev.aggregateId;
  let conv = s.conversations.get(id) ?? null;
  // A version at or below the row's was folded already (belt and braces: the checkpoint skips it first).
  if (conv && ev.version <= conv.version) return;

  if (type === "conversation.created") {
    const d = parse(ConversationEvents[type], ev);
    conv = {
      id,
      tenant_id: d.tenantId,
      project_id: d.projectId,
      owner_id: d.ownerId,
      title: d.title,
      model: d.model,
      status: "idle",
      message_count: 0,
      reply_count: 0,
      version: ev.version,
      last_offset: ev.offset,
      last_activity_at: at,
      created_at: at,
      updated_at: at,
    };
    s.conversations.set(id, conv);
    s.dirty.conversations.add(id);
    return;
  }
  if (!conv) throw new RejectedEvent(`${type} for conversation ${id}, which has no conversation.created`);
  const touch = (c: ConversationRow) => {
    c.version = ev.version;
    c.last_offset = ev.offset;
    c.last_activity_at = at;
    c.updated_at = at;
    s.dirty.conversations.add(id);
  };

  switch (type) {
    case "message.received": {
      const d = parse(ConversationEvents[type], ev);
      conv.message_count += 1;
      touch(conv);
      s.messages.set(d.messageId, {
        id: d.messageId,
        conversation_id: id,
        tenant_id: conv.tenant_id,
        user_id: d.userId,
        role: "user",
        text: d.text,
        status: "received",
        client_message_id: d.clientMessageId,
        reply_to: null,
        model: null,
        finish_reason: null,
        error_code: null,
        input_tokens: null,
        output_tokens: null,
        cost_micros: null,
        delta_count: 0,
        seq: ev.version,
        created_at: at,
        updated_at: at,
      });
      s.dirty.messages.add(d.messageId);
      return;
    }
    case "message.rejected": {
      parse(ConversationEvents[type], ev);
      touch(conv);
      return;
    }
    case "assistant.started": {
      const d = parse(ConversationEvents[type], ev);
      const question = s.messages.get(d.replyTo) ?? null;
      conv.status = "replying";
      conv.reply_count += 1;
      touch(conv);
      s.messages.set(d.messageId, {
        id: d.messageId,
        conversation_id: id,
        tenant_id: conv.tenant_id,
        user_id: question?.user_id ?? conv.owner_id,
        role: "assistant",
        text: "",
        status: "streaming",
        client_message_id: null,
        reply_to: d.replyTo,
        model: d.model,
        finish_reason: null,
        error_code: null,
        input_tokens: null,
        output_tokens: null,
        cost_micros: null,
        delta_count: 0,
        seq: ev.version,
        created_at: at,
        updated_at: at,
      });
      s.dirty.messages.add(d.messageId);
      return;
    }
    case "assistant.delta": {
      const d = parse(ConversationEvents[type], ev);
      const msg = replyRow(s, conv, d.messageId, ev, at);
      touch(conv);
      if (d.index < msg.delta_count) return;
      msg.text += d.text;
      msg.delta_count = d.index + 1;
      msg.updated_at = at;
      s.dirty.messages.add(msg.id);
      return;
    }
    case "assistant.completed": {
      const d = parse(ConversationEvents[type], ev);
      const msg = replyRow(s, conv, d.messageId, ev, at);
      conv.status = "idle";
      touch(conv);
      msg.text = d.text;
      msg.status = "completed";
      msg.finish_reason = d.finishReason;
      finishReply(s, conv, msg, d.usage, d.costMicros, ev.at, at);
      return;
    }
    case "assistant.cancelled":
    case "assistant.failed": {
      const d = parse(ConversationEvents[type], ev);
      const msg = replyRow(s, conv, d.messageId, ev, at);
      conv.status = "idle";
      touch(conv);
      msg.status = type === "assistant.cancelled" ? "cancelled" : "failed";
      msg.error_code = d.code ?? null;
      finishReply(s, conv, msg, d.usage, d.costMicros, ev.at, at);
      return;
    }
  }
}

function finishReply(
  s: FoldState,
  conv: ConversationRow,
  msg: MessageRow,
  usage: { inputTokens: number; outputTokens: number },
  costMicros: number,
  atText: string,
  at: Date,
): void {
  msg.input_tokens = usage.inputTokens;
  msg.output_tokens = usage.outputTokens;
  msg.cost_micros = costMicros;
  msg.updated_at = at;
  s.dirty.messages.add(msg.id);
  // I8: cancelled and failed replies are billed for what was generated, like completed ones.
  addSpend(s, conv, msg, usage, costMicros, atText);
}

/** The reply row a delta or terminal event refers to; created if its `assistant.started` is missing, so spend is never lost. */
function replyRow(s: FoldState, conv: ConversationRow, messageId: string, ev: ProjectedEvent, at: Date): MessageRow {
  const found = s.messages.get(messageId);
  if (found) {
    if (found.role !== "assistant" || found.conversation_id !== conv.id) {
      throw new RejectedEvent(`${ev.type}: message ${messageId} is not a reply of conversation ${conv.id}`);
    }
    return found;
  }
  const row: MessageRow = {
    id: messageId,
    conversation_id: conv.id,
    tenant_id: conv.tenant_id,
    user_id: conv.owner_id,
    role: "assistant",
    text: "",
    status: "streaming",
    client_message_id: null,
    reply_to: null,
    model: conv.model,
    finish_reason: null,
    error_code: null,
    input_tokens: null,
    output_tokens: null,
    cost_micros: null,
    delta_count: 0,
    seq: ev.version,
    created_at: at,
    updated_at: at,
  };
  s.messages.set(messageId, row);
  s.dirty.messages.add(messageId);
  return row;
}

function foldSession(s: FoldState, ev: ProjectedEvent): void {
  const type = ev.type;
  if (!isSessionEventType(type)) return;
  const at = new Date(ev.at);
  if (Number.isNaN(at.getTime())) throw new RejectedEvent(`bad timestamp ${JSON.stringify(ev.at)}`);
  const id = ev.aggregateId;
  const row = s.sessions.get(id) ?? null;
  if (row && ev.version <= row.version) return;
  if (type === "session.opened") {
    const d = parse(SessionEvents[type], ev);
    s.sessions.set(id, {
      id,
      tenant_id: d.tenantId,
      user_id: d.userId,
      tier: d.tier,
      transport: d.transport,
      status: "open",
      close_reason: null,
      resume_count: 0,
      version: ev.version,
      opened_at: at,
      last_seen_at: at,
      closed_at: null,
    });
    s.dirty.sessions.add(id);
    return;
  }
  if (!row) throw new RejectedEvent(`${type} for session ${id}, which has no session.opened`);
  row.version = ev.version;
  row.last_seen_at = at;
  s.dirty.sessions.add(id);
  switch (type) {
    case "session.resumed": {
      const d = parse(SessionEvents[type], ev);
      row.transport = d.transport;
      row.resume_count += 1;
      row.status = "open";
      return;
    }
    case "session.closed": {
      const d = parse(SessionEvents[type], ev);
      row.status = "closed";
      row.close_reason = d.reason;
      row.closed_at = at;
      return;
    }
    case "session.tierUpgraded": {
      const d = parse(SessionEvents[type], ev);
      row.tier = d.to;
      row.user_id = d.userId;
      return;
    }
  }
}

function foldLedger(s: FoldState, ev: ProjectedEvent): void {
  const type = ev.type;
  if (!isLedgerEventType(type)) return;
  const at = new Date(ev.at);
  if (Number.isNaN(at.getTime())) throw new RejectedEvent(`bad timestamp ${JSON.stringify(ev.at)}`);
  const id = ev.aggregateId;
  let row = s.ledgers.get(id) ?? null;
  if (row && ev.version <= row.version) return;
  if (!row) {
    const ref = parseLedgerId(id);
    if (!ref) throw new RejectedEvent(`ledger id ${JSON.stringify(id)} is neither a user ledger nor a project budget`);
    row = {
      id,
      scope: ref.scope,
      tenant_id: ref.tenantId,
      user_id: ref.scope === "user" ? ref.userId : null,
      project_id: ref.scope === "project" ? ref.projectId : null,
      tier: null,
      daily_tokens: null,
      daily_micros: null,
      max_concurrent: null,
      used_tokens: 0,
      used_micros: 0,
      reserved_tokens: 0,
      reserved_micros: 0,
      topup_tokens: 0,
      topup_micros: 0,
      open_reservations: 0,
      day: null,
      resets_at: null,
      version: 0,
      updated_at: at,
    };
    s.ledgers.set(id, row);
  }
  row.version = ev.version;
  row.updated_at = at;
  s.dirty.ledgers.add(id);
  switch (type) {
    case "ledger.configured": {
      const d = parse(LedgerEvents[type], ev);
      row.tier = d.tier;
      row.daily_tokens = d.dailyTokens;
      row.max_concurrent = d.maxConcurrent;
      return;
    }
    case "ledger.toppedUp":
      row.topup_tokens += parse(LedgerEvents[type], ev).tokens;
      return;
    case "ledger.reserved":
      row.reserved_tokens += parse(LedgerEvents[type], ev).tokens;
      row.open_reservations += 1;
      return;
    case "ledger.committed": {
      const d = parse(LedgerEvents[type], ev);
      row.reserved_tokens = Math.max(0, row.reserved_tokens - d.reservedTokens);
      row.used_tokens += d.tokens;
      row.used_micros += d.costMicros;
      row.open_reservations = Math.max(0, row.open_reservations - 1);
      return;
    }
    case "ledger.released": {
      const d = parse(LedgerEvents[type], ev);
      row.reserved_tokens = Math.max(0, row.reserved_tokens - d.tokens);
      row.open_reservations = Math.max(0, row.open_reservations - 1);
      return;
    }
    case "ledger.reset": {
      const d = parse(LedgerEvents[type], ev);
      row.day = d.day;
      row.resets_at = new Date(d.resetsAt);
      row.used_tokens = 0;
      row.used_micros = 0;
      row.topup_tokens = Math.max(0, row.topup_tokens - d.topUpConsumed);
      return;
    }
    case "budget.configured": {
      const d = parse(LedgerEvents[type], ev);
      row.daily_micros = d.dailyMicros;
      row.max_concurrent = d.maxConcurrent;
      return;
    }
    case "budget.toppedUp":
      row.topup_micros += parse(LedgerEvents[type], ev).costMicros;
      return;
    case "budget.reserved":
      row.reserved_micros += parse(LedgerEvents[type], ev).costMicros;
      row.open_reservations += 1;
      return;
    case "budget.committed": {
      const d = parse(LedgerEvents[type], ev);
      row.reserved_micros = Math.max(0, row.reserved_micros - d.reservedMicros);
      row.used_micros += d.costMicros;
      row.used_tokens += d.tokens;
      row.open_reservations = Math.max(0, row.open_reservations - 1);
      return;
    }
    case "budget.released": {
      const d = parse(LedgerEvents[type], ev);
      row.reserved_micros = Math.max(0, row.reserved_micros - d.costMicros);
      row.open_reservations = Math.max(0, row.open_reservations - 1);
      return;
    }
    case "budget.reset": {
      const d = parse(LedgerEvents[type], ev);
      row.day = d.day;
      row.resets_at = new Date(d.resetsAt);
      row.used_tokens = 0;
      row.used_micros = 0;
      row.topup_micros = Math.max(0, row.topup_micros - d.topUpConsumed);
      return;
    }
  }
}
