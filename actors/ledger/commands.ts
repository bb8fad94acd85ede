import { z } from "zod";
import { tier } from "../../core/events/session.js";

/**
 * Commands of the two ledgers. `at` (ISO-8601) comes with every command: it decides the UTC day
 * (the daily reset) and reservation expiry, so the decider never reads the clock.
 *
 * `tier` on the user-ledger commands is a hint from the caller's token: it configures a ledger
 * seen for the first time, and upgrades one whose limits came from tier defaults (never one an
 * admin configured, never downwards).
 */
const at = z.iso.datetime({ offset: true });
const id = z.string().min(1).max(200);
const amount = z.number().int().nonnegative();
const positive = z.number().int().positive();

// ---- user ledger (tokens)

export const ConfigureLedger = z
  .object({
    type: z.literal("configure"),
    at,
    tier: tier.optional(),
    dailyTokens: amount.optional(),
    maxConcurrent: positive.optional(),
  })
  .strict();
export const TopUpLedger = z.object({ type: z.literal("topUp"), at, tokens: positive, tier: tier.optional() }).strict();
export const ReserveTokens = z
  .object({ type: z.literal("reserve"), at, reservationId: id, tokens: amount, tier: tier.optional(), conversationId: id.optional() })
  .strict();
/** `tokens` = the real usage (input + output); `costMicros` is recorded for the daily spend figure. */
export const CommitTokens = z
  .object({ type: z.literal("commit"), at, reservationId: id, tokens: amount, costMicros: amount, tier: tier.optional() })
  .strict();
export const ReleaseTokens = z.object({ type: z.literal("release"), at, reservationId: id, tier: tier.optional() }).strict();
/** Release reservations whose owner never settled them (see docs/actors.md, reservation expiry). */
export const ExpireReservations = z.object({ type: z.literal("expire"), at, tier: tier.optional() }).strict();

export const LedgerCommand = z.discriminatedUnion("type", [
  ConfigureLedger,
  TopUpLedger,
  ReserveTokens,
  CommitTokens,
  ReleaseTokens,
  ExpireReservations,
]);
export type LedgerCommand = z.infer<typeof LedgerCommand>;

// ---- project budget (cost micro-units)

/** `dailyMicros: null` removes the cap; `maxConcurrent: null` removes the concurrency cap. */
export const ConfigureBudget = z
  .object({ type: z.literal("configure"), at, dailyMicros: amount.nullable().optional(), maxConcurrent: positive.nullable().optional() })
  .strict();
export const TopUpBudget = z.object({ type: z.literal("topUp"), at, costMicros: positive }).strict();
export const ReserveBudget = z
  .object({ type: z.literal("reserve"), at, reservationId: id, costMicros: amount, conversationId: id.optional() })
  .strict();
export const CommitBudget = z
  .object({ type: z.literal("commit"), at, reservationId: id, costMicros: amount, tokens: amount })
  .strict();
export const ReleaseBudget = z.object({ type: z.literal("release"), at, reservationId: id }).strict();
export const ExpireBudget = z.object({ type: z.literal("expire"), at }).strict();

export const BudgetCommand = z.discriminatedUnion("type", [
  ConfigureBudget,
  TopUpBudget,
  ReserveBudget,
  CommitBudget,
  ReleaseBudget,
  ExpireBudget,
]);
export type BudgetCommand = z.infer<typeof BudgetCommand>;
