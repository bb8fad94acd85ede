import { createHash, randomUUID } from "node:crypto";
import { TributaryError } from "../../core/errors.js";
import type { Principal } from "./command.js";
import { resultError, type CommandBus } from "./command-bus.js";
import type { LedgerPort, LedgerView } from "./ledger-port.js";

type Tier = Principal["tier"];

/** CONTRACT §3: a decision within 5 s answers 201/4xx; later, 202 pending. */
export const DECISION_WAIT_MS = 5000;

/**
 * The command side as the edge calls it (it implements edge/deps.ts `Commands` structurally).
 * Every write goes through the partition command stream to the owning worker (I3); the quota view
 * is read straight from the ledger stream.
 */
export class CommandApi {
  constructor(
    private readonly bus: CommandBus,
    private readonly ledgers: LedgerPort,
    private readonly waitMs = DECISION_WAIT_MS,
  ) {}

  async createConversation(input: {
    tenantId: string;
    userId: string;
    projectId: string | undefined;
    title?: string | undefined;
    model?: string | undefined;
    idempotencyKey?: string | undefined;
  }): Promise<{ id: string; title: string; model: string; createdAt: string }> {
    // The same Idempotency-Key of the same user names the same conversation, so a retried POST
    // lands on the same aggregate and the decider answers it from state.
    const id = input.idempotencyKey
      ? `c_${createHash("sha256").update(`${input.tenantId}\u0000${input.userId}\u0000${input.idempotencyKey}`).digest("base64url").slice(0, 26)}`
      : `c_${randomUUID().replace(/-/g, "")}`;
    const principal = this.principal(input.tenantId, input.userId, input.projectId);
    const payload: Record<string, unknown> = {};
    if (input.title !== undefined) payload.title = input.title;
    if (input.model !== undefined) payload.model = input.model;
    if (input.projectId !== undefined) payload.projectId = input.projectId;
    const { result } = await this.bus.send("conversation.create", id, principal, payload, { waitMs: this.waitMs });
    if (!result) throw new TributaryError("UNAVAILABLE", "no worker decided in time; retry with the same Idempotency-Key", { retryAfter: 1 });
    if (!result.ok) throw resultError(result);
    return result.value as { id: string; title: string; model: string; createdAt: string };
  }

  async postMessage(input: {
    conversationId: string;
    tenantId: string;
    userId: string;
    tier: Tier;
    text: string;
    clientMessageId: string;
    maxTokens?: number | undefined;
    requestId?: string | undefined;
  }): Promise<
    | { kind: "accepted"; status: 201 | 200; body: { messageId: string; replyId: string; offset: string } }
    | { kind: "pending"; body: { commandId: string; status: "pending" } }
  > {
    const principal = { ...this.principal(input.tenantId, input.userId, undefined), tier: input.tier };
    const payload: Record<string, unknown> = {
      messageId: `m_${randomUUID().replace(/-/g, "")}`,
      replyId: `r_${randomUUID().replace(/-/g, "")}`,
      clientMessageId: input.clientMessageId,
      text: input.text,
    };
    if (input.maxTokens !== undefined) payload.maxTokens = input.maxTokens;
    const { commandId, result } = await this.bus.send("conversation.postMessage", input.conversationId, principal, payload, {
      waitMs: this.waitMs,
      ...(input.requestId ? { requestId: input.requestId } : {}),
    });
    if (!result) return { kind: "pending", body: { commandId, status: "pending" } };
    if (!result.ok) throw resultError(result);
    const v = result.value as { status: 200 | 201; messageId: string; replyId: string; offset: string };
    return { kind: "accepted", status: v.status, body: { messageId: v.messageId, replyId: v.replyId, offset: v.offset } };
  }

  async cancel(input: { conversationId: string; tenantId: string; userId: string; roles?: string[] | undefined }): Promise<{ cancelled: boolean }> {
    // The roles travel with the command: the actor authorizes again (a tenant admin may cancel).
    const principal = { ...this.principal(input.tenantId, input.userId, undefined), roles: input.roles ?? [] };
    const { result } = await this.bus.send("conversation.cancel", input.conversationId, principal, {}, {
      waitMs: this.waitMs,
    });
    if (!result) throw new TributaryError("UNAVAILABLE", "no worker decided in time", { retryAfter: 1 });
    if (!result.ok) throw resultError(result);
    return { cancelled: Boolean((result.value as { cancelled?: boolean }).cancelled) };
  }

  async setQuota(input: {
    tenantId: string;
    userId: string;
    tier?: Tier | undefined;
    dailyTokens?: number | undefined;
    maxConcurrent?: number | undefined;
    topUpTokens?: number | undefined;
  }): Promise<LedgerView> {
    const payload: Record<string, unknown> = {};
    if (input.tier !== undefined) payload.tier = input.tier;
    if (input.dailyTokens !== undefined) payload.dailyTokens = input.dailyTokens;
    if (input.maxConcurrent !== undefined) payload.maxConcurrent = input.maxConcurrent;
    if (input.topUpTokens !== undefined) payload.topUpTokens = input.topUpTokens;
    const ledgerId = this.ledgers.userLedgerId(input.tenantId, input.userId);
    const { result } = await this.bus.send("ledger.adjust", ledgerId, this.principal(input.tenantId, input.userId, undefined), payload, {
      waitMs: this.waitMs,
    });
    if (!result) throw new TributaryError("UNAVAILABLE", "no worker decided in time", { retryAfter: 1 });
    if (!result.ok) throw resultError(result);
    return result.value as unknown as LedgerView;
  }

  async getLedger(input: { tenantId: string; userId: string; tier?: Tier }): Promise<LedgerView> {
    return this.ledgers.view({ tenantId: input.tenantId, userId: input.userId, tier: input.tier ?? "registered", at: new Date().toISOString() });
  }

  /**
   * Session actor commands (issue 5: each client connection opens / resumes / closes a session).
   * Fire and forget: a connection never waits on its bookkeeping; the command stream still retries.
   */
  async session(
    kind: "open" | "resume" | "close" | "upgradeTier",
    s: { sessionId: string; tenantId: string; userId: string; tier: Tier; transport?: string; reason?: string },
  ): Promise<void> {
    const payload: Record<string, unknown> = {};
    if (kind === "open") Object.assign(payload, { sessionId: s.sessionId, userId: s.userId, tenantId: s.tenantId, tier: s.tier, transport: s.transport ?? "unknown" });
    if (kind === "resume") payload.transport = s.transport ?? "unknown";
    if (kind === "close") payload.reason = (s.reason ?? "closed").slice(0, 64);
    if (kind === "upgradeTier") payload.tier = s.tier;
    await this.bus.send(`session.${kind}`, s.sessionId, { ...this.principal(s.tenantId, s.userId, undefined), tier: s.tier }, payload);
  }

  private principal(tenantId: string, userId: string, projectId: string | undefined): Principal {
    return { tenantId, userId, projectId: projectId ?? null, tier: "registered", roles: [] };
  }
}
