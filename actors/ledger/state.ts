import { z } from "zod";
import { tier } from "../../core/events/session.js";
import { bmGet, shallowMap } from "../bucket-map.js";

/**
 * One context for both ledgers, in neutral units: `amount` is tokens on a user ledger and cost
 * micro-units on a project budget; `other` is the figure recorded alongside (cost on a user ledger,
 * tokens on a budget). JSON-safe; the schema validates snapshots.
 *
 * I8 in these terms: `used + reserved ≤ limit + topUp` whenever `limit` is not null.
 */
const count = z.number().int().nonnegative();

export const OpenReservation = z.object({ amount: count, expiresAt: z.string() });
export type OpenReservation = z.infer<typeof OpenReservation>;

export const Settlement = z.enum(["committed", "released", "expired"]);
export type Settlement = z.infer<typeof Settlement>;

export const LedgerContext = z.object({
  version: count,
  configured: z.boolean(),
  /** User ledgers only; null on a project budget. */
  tier: tier.nullable(),
  /** Where the limits came from: tier defaults may follow the caller's tier upward, admin settings stay. */
  source: z.enum(["default", "admin", "upgrade"]),
  /** Daily cap in `amount` units; null = no cap. */
  limit: count.nullable(),
  maxConcurrent: count.nullable(),
  /** Top-up balance: spent only by usage above the daily limit, at the day's reset. */
  topUp: count,
  /** Current UTC day (YYYY-MM-DD) and the instant it ends; null before the first command. */
  day: z.string().nullable(),
  resetsAt: z.string().nullable(),
  used: count,
  usedOther: count,
  /** Sum of the open reservations' amounts. */
  reserved: count,
  open: z.record(z.string(), OpenReservation),
  /** Outcomes of reservations settled today and yesterday, for idempotent repeats (BucketMaps). */
  settled: shallowMap<Settlement>(),
  settledBefore: shallowMap<Settlement>(),
});
export type LedgerContext = z.infer<typeof LedgerContext>;

export function initialLedgerContext(): LedgerContext {
  return {
    version: 0,
    configured: false,
    tier: null,
    source: "default",
    limit: null,
    maxConcurrent: null,
    topUp: 0,
    day: null,
    resetsAt: null,
    used: 0,
    usedOther: 0,
    reserved: 0,
    open: {},
    settled: {},
    settledBefore: {},
  };
}

export function settlementOf(ctx: LedgerContext, reservationId: string): Settlement | "open" | undefined {
  if (Object.hasOwn(ctx.open, reservationId)) return "open";
  return bmGet(ctx.settled, reservationId) ?? bmGet(ctx.settledBefore, reservationId);
}
