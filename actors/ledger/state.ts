import { z } from "zod";
import { tier } from "../../core/events/session.js";
import { bmGet, bmHas, bmSet, bmSize, shallowMap } from "../bucket-map.js";

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
  /**
   * Outcomes of recent settlements, for idempotent repeats (BucketMaps), in two generations: the
   * newer one is started afresh at each UTC day and when it holds a generation's worth
   * (`withSettlement`), the older one is what the newer held before.
   */
  settled: shallowMap<Settlement>(),
  settledBefore: shallowMap<Settlement>(),
  /** Entries in `settled`; absent in snapshots written before it existed (then counted once). */
  settledCount: count.optional(),
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
    settledCount: 0,
  };
}

/**
 * Settlements the newer generation holds before it becomes the older one: a ledger remembers the
 * outcomes of its latest 2,048–4,096 settlements (and at most today's and yesterday's). A project
 * budget settles every reservation of its project, so remembering a whole day made its state —
 * and every settle's copy of a bucket, and every snapshot — grow with the project's traffic: 0.6 ms
 * per message and a 2.7 MB snapshot at 50,000 messages of a day (bench/ledger-state.ts). A repeat
 * older than that is still answered once: every ledger command carries a command id derived from
 * its reservation (`reserve:`, `commit:`, `release:`), which the event store dedupes for IDEM_TTL
 * (docs/actors.md, "Settled reservations").
 */
export const SETTLED_GENERATION = 2048;

/** The settled maps after recording `outcome` for `reservationId` (a new generation when full). */
export function withSettlement(
  ctx: LedgerContext,
  reservationId: string,
  outcome: Settlement,
  generation = SETTLED_GENERATION,
): Pick<LedgerContext, "settled" | "settledBefore" | "settledCount"> {
  const count = ctx.settledCount ?? bmSize(ctx.settled);
  // A second settlement of one reservation (expired, then committed late) replaces its outcome.
  if (bmHas(ctx.settled, reservationId)) return { settledBefore: ctx.settledBefore, settled: bmSet<Settlement>(ctx.settled, reservationId, outcome), settledCount: count };
  if (count >= generation) return { settledBefore: ctx.settled, settled: bmSet<Settlement>({}, reservationId, outcome), settledCount: 1 };
  return { settledBefore: ctx.settledBefore, settled: bmSet<Settlement>(ctx.settled, reservationId, outcome), settledCount: count + 1 };
}

export function settlementOf(ctx: LedgerContext, reservationId: string): Settlement | "open" | undefined {
  if (Object.hasOwn(ctx.open, reservationId)) return "open";
  return bmGet(ctx.settled, reservationId) ?? bmGet(ctx.settledBefore, reservationId);
}
