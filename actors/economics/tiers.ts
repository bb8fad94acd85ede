import type { Tier } from "../../core/events/session.js";

/**
 * Tier defaults (CONTRACT §3). Configurable: a deployment passes its own table to the ledger
 * decider; the values actually applied to a user are written into `ledger.configured`, so a later
 * change of defaults never rewrites history on replay.
 */
export interface TierLimits {
  dailyTokens: number;
  maxConcurrent: number;
  messagesPerMinute: number;
}

export type TierTable = Record<Tier, TierLimits>;

export const DEFAULT_TIERS: TierTable = {
  anonymous: { dailyTokens: 20_000, maxConcurrent: 1, messagesPerMinute: 10 },
  registered: { dailyTokens: 200_000, maxConcurrent: 4, messagesPerMinute: 60 },
  privileged: { dailyTokens: 2_000_000, maxConcurrent: 16, messagesPerMinute: 600 },
};

const RANK: Record<Tier, number> = { anonymous: 0, registered: 1, privileged: 2 };

export function tierRank(t: Tier): number {
  return RANK[t];
}
