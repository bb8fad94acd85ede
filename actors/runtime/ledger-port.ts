import { TributaryError } from "../../core/errors.js";
import { projectLedgerId, userLedgerId, type LedgerEvent } from "../../core/events/ledger.js";
import type { Rejection } from "../decider.js";
import { DEFAULT_TIERS, type TierTable } from "../economics/index.js";
import { quotaView, type QuotaView } from "../ledger/view.js";
import type { BudgetCommand, LedgerCommand } from "../ledger/commands.js";
import type { BudgetDecider, LedgerState, UserLedgerDecider } from "../ledger/decider.js";
import type { AggregateRepository } from "./repository.js";

type Tier = "anonymous" | "registered" | "privileged";
type Ledgers = AggregateRepository<LedgerCommand, LedgerEvent, LedgerState>;
type Budgets = AggregateRepository<BudgetCommand, LedgerEvent, LedgerState>;

/** CONTRACT §3 `GET /v1/quota`: the ledger's own view. */
export type LedgerView = QuotaView;

export interface ReserveInput {
  tenantId: string;
  userId: string;
  projectId: string | null;
  tier: Tier;
  reservationId: string;
  tokens: number;
  costMicros: number;
  conversationId: string;
  at: string;
}

export interface SettleInput {
  tenantId: string;
  userId: string;
  projectId: string | null;
  reservationId: string;
  tokens: number;
  costMicros: number;
  at: string;
}

/**
 * Quota ledgers as the conversation process uses them (I8). A user's ledger is shared by all their
 * conversations, which live in different partitions, so it is written with optimistic concurrency
 * from whichever worker needs it: the expected version makes concurrent reservations serialise
 * (a conflict re-reads and decides again), and reservation ids make every step idempotent.
 */
export class LedgerPort {
  constructor(
    private readonly ledgers: Ledgers,
    private readonly budgets: Budgets,
    private readonly ledgerDecider: UserLedgerDecider,
    private readonly budgetDecider: BudgetDecider,
    private readonly tiers: TierTable = DEFAULT_TIERS,
  ) {}

  userLedgerId(tenantId: string, userId: string): string {
    return userLedgerId(tenantId, userId);
  }

  /** Reserve on the user's ledger, then on the project budget; undo the first if the second refuses. */
  async reserve(r: ReserveInput): Promise<{ ok: true } | { ok: false; rejection: Rejection }> {
    const uid = userLedgerId(r.tenantId, r.userId);
    const user = await this.ledgers.execute(uid, `reserve:${r.reservationId}`, r.at, (s) =>
      this.ledgerDecider.decide(
        { type: "reserve", at: r.at, reservationId: r.reservationId, tokens: r.tokens, tier: r.tier, conversationId: r.conversationId },
        s,
      ),
    );
    if (!user.decision.ok) return { ok: false, rejection: user.decision.rejection };
    if (r.projectId) {
      const pid = projectLedgerId(r.tenantId, r.projectId);
      const budget = await this.budgets.execute(pid, `reserve:${r.reservationId}`, r.at, (s) =>
        this.budgetDecider.decide(
          { type: "reserve", at: r.at, reservationId: r.reservationId, costMicros: r.costMicros, conversationId: r.conversationId },
          s,
        ),
      );
      if (!budget.decision.ok) {
        await this.releaseUser(uid, r.reservationId, r.at);
        return { ok: false, rejection: budget.decision.rejection };
      }
    }
    return { ok: true };
  }

  /**
   * Give a reservation back whole (its reply will not run); a repeat, or a reservation never made
   * or already settled, is a no-op.
   */
  async release(r: { tenantId: string; userId: string; projectId: string | null; reservationId: string; at: string }): Promise<void> {
    await this.releaseUser(userLedgerId(r.tenantId, r.userId), r.reservationId, r.at);
    if (r.projectId) {
      const pid = projectLedgerId(r.tenantId, r.projectId);
      await this.budgets.execute(pid, `release:${r.reservationId}`, r.at, (s) =>
        this.budgetDecider.decide({ type: "release", at: r.at, reservationId: r.reservationId }, s),
      );
    }
  }

  /** The user ledger's half of a release (idempotent by reservation id). */
  private async releaseUser(uid: string, reservationId: string, at: string): Promise<void> {
    await this.ledgers.execute(uid, `release:${reservationId}`, at, (s) => this.ledgerDecider.decide({ type: "release", at, reservationId }, s));
  }

  /** Commit the real usage and release the rest; a repeat is a no-op (the decider knows it settled). */
  async commit(s: SettleInput): Promise<void> {
    const uid = userLedgerId(s.tenantId, s.userId);
    const user = await this.ledgers.execute(uid, `commit:${s.reservationId}`, s.at, (st) =>
      this.ledgerDecider.decide({ type: "commit", at: s.at, reservationId: s.reservationId, tokens: s.tokens, costMicros: s.costMicros }, st),
    );
    if (!user.decision.ok && user.decision.rejection.code !== "NOT_FOUND") {
      throw new TributaryError(user.decision.rejection.code, user.decision.rejection.message);
    }
    if (s.projectId) {
      const pid = projectLedgerId(s.tenantId, s.projectId);
      const budget = await this.budgets.execute(pid, `commit:${s.reservationId}`, s.at, (st) =>
        this.budgetDecider.decide({ type: "commit", at: s.at, reservationId: s.reservationId, costMicros: s.costMicros, tokens: s.tokens }, st),
      );
      if (!budget.decision.ok && budget.decision.rejection.code !== "NOT_FOUND") {
        throw new TributaryError(budget.decision.rejection.code, budget.decision.rejection.message);
      }
    }
  }

  /** PUT /v1/admin/quotas/:userId: configure, then top up; each step idempotent by command id. */
  async adjust(
    commandId: string,
    at: string,
    a: { tenantId: string; userId: string; tier?: Tier; dailyTokens?: number; maxConcurrent?: number; topUpTokens?: number },
  ): Promise<LedgerView> {
    const uid = userLedgerId(a.tenantId, a.userId);
    if (a.tier !== undefined || a.dailyTokens !== undefined || a.maxConcurrent !== undefined) {
      const cmd: LedgerCommand = { type: "configure", at };
      if (a.tier !== undefined) cmd.tier = a.tier;
      if (a.dailyTokens !== undefined) cmd.dailyTokens = a.dailyTokens;
      if (a.maxConcurrent !== undefined) cmd.maxConcurrent = a.maxConcurrent;
      const r = await this.ledgers.execute(uid, `${commandId}:configure`, at, (s) => this.ledgerDecider.decide(cmd, s));
      if (!r.decision.ok) throw new TributaryError(r.decision.rejection.code, r.decision.rejection.message);
    }
    if (a.topUpTokens !== undefined && a.topUpTokens > 0) {
      const tokens = a.topUpTokens;
      const r = await this.ledgers.execute(uid, `${commandId}:topup`, at, (s) => this.ledgerDecider.decide({ type: "topUp", at, tokens }, s));
      if (!r.decision.ok) throw new TributaryError(r.decision.rejection.code, r.decision.rejection.message);
    }
    return this.view({ tenantId: a.tenantId, userId: a.userId, tier: a.tier ?? "registered", at });
  }

  /** The caller's ledger as of `at`, read fresh from its stream (another worker may have written). */
  async view(q: { tenantId: string; userId: string; tier: Tier; at: string }): Promise<LedgerView> {
    const loaded = await this.ledgers.load(userLedgerId(q.tenantId, q.userId), { fresh: true });
    return quotaViewOf(loaded.state, q.tier, q.at, this.tiers);
  }
}

/** The /v1/quota body from a ledger's state; a ledger never used shows the caller's tier defaults. */
export function quotaViewOf(state: LedgerState, callerTier: Tier, at: string, tiers: TierTable = DEFAULT_TIERS): LedgerView {
  return quotaView(state, at, { fallbackTier: callerTier, tiers });
}
