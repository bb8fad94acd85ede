import type { Tier } from "../../core/events/session.js";
import { nextMidnight, utcDay } from "../economics/day.js";
import { DEFAULT_TIERS, type TierTable } from "../economics/tiers.js";
import type { LedgerState } from "./decider.js";

/**
 * CONTRACT §3 `GET /v1/quota`, computed from a user ledger's state as of `now`. If `now` is in a
 * later UTC day than the ledger's last command, the view shows the day as the next command would
 * see it (usage back to zero, top-up reduced by the overflow) without needing an event first.
 */
export interface QuotaView {
  tier: Tier;
  limits: { dailyTokens: number; maxConcurrent: number };
  used: { tokens: number; costMicros: number };
  reserved: { tokens: number };
  remaining: { tokens: number };
  resetsAt: string;
}

export interface QuotaViewOptions {
  /** The caller's tier, for a ledger that has never been configured. */
  fallbackTier?: Tier;
  tiers?: TierTable;
}

export function quotaView(state: LedgerState, now: string, opts: QuotaViewOptions = {}): QuotaView {
  const ctx = state.context;
  const tiers = opts.tiers ?? DEFAULT_TIERS;
  const today = utcDay(now);
  let tier: Tier;
  let dailyTokens: number;
  let maxConcurrent: number;
  if (ctx.configured && ctx.tier !== null) {
    tier = ctx.tier;
    dailyTokens = ctx.limit ?? 0;
    maxConcurrent = ctx.maxConcurrent ?? 0;
  } else {
    tier = opts.fallbackTier ?? "anonymous";
    dailyTokens = tiers[tier].dailyTokens;
    maxConcurrent = tiers[tier].maxConcurrent;
  }
  let used = ctx.used;
  let usedMicros = ctx.usedOther;
  let topUp = ctx.topUp;
  let resetsAt = ctx.resetsAt ?? nextMidnight(today);
  if (ctx.day === null || today > ctx.day) {
    topUp -= Math.min(topUp, Math.max(0, used - dailyTokens));
    used = 0;
    usedMicros = 0;
    resetsAt = nextMidnight(today);
  }
  return {
    tier,
    limits: { dailyTokens, maxConcurrent },
    used: { tokens: used, costMicros: usedMicros },
    reserved: { tokens: ctx.reserved },
    remaining: { tokens: Math.max(0, dailyTokens + topUp - used - ctx.reserved) },
    resetsAt,
  };
}

/** The project budget's figures, in the same spirit (cost micro-units; null limits = no cap). */
export interface BudgetView {
  limits: { dailyMicros: number | null; maxConcurrent: number | null };
  used: { costMicros: number; tokens: number };
  reserved: { costMicros: number };
  remaining: { costMicros: number | null };
  topUp: { costMicros: number };
  resetsAt: string;
}

export function budgetView(state: LedgerState, now: string): BudgetView {
  const ctx = state.context;
  const today = utcDay(now);
  let used = ctx.used;
  let usedTokens = ctx.usedOther;
  let topUp = ctx.topUp;
  let resetsAt = ctx.resetsAt ?? nextMidnight(today);
  if (ctx.day === null || today > ctx.day) {
    if (ctx.limit !== null) topUp -= Math.min(topUp, Math.max(0, used - ctx.limit));
    used = 0;
    usedTokens = 0;
    resetsAt = nextMidnight(today);
  }
  return {
    limits: { dailyMicros: ctx.limit, maxConcurrent: ctx.maxConcurrent },
    used: { costMicros: used, tokens: usedTokens },
    reserved: { costMicros: ctx.reserved },
    remaining: { costMicros: ctx.limit === null ? null : Math.max(0, ctx.limit + topUp - used - ctx.reserved) },
    topUp: { costMicros: topUp },
    resetsAt,
  };
}
