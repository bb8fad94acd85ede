import { z } from "zod";
import { tier } from "./session.js";

/**
 * Quota ledger events (DESIGN §Actors, I8). Two ledgers share one aggregate kind, `ledger`, told apart
 * by their id (see `userLedgerId` / `projectLedgerId`):
 *
 * - the user ledger (`ledger.*`), one per tenant+user, counts tokens (input + output) per UTC day;
 * - the project budget (`budget.*`), one per tenant+project, counts cost micro-units per UTC day.
 *
 * Every amount is an integer. A reservation moves from `reserved` to exactly one of `committed`
 * (the real usage, clamped to the reservation; the rest is released in the same event) or `released`
 * (cancelled before any usage, or expired because its owner crashed). `reset` opens a new UTC day:
 * usage goes back to zero, open reservations carry over, top-ups are consumed only by usage above the
 * daily limit. Schemas are `.loose()`: events only grow.
 */
const amount = z.number().int().nonnegative();
const nullableLimit = z.number().int().nonnegative().nullable();
const isoDay = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
const releaseReason = z.enum(["released", "expired"]);

export const LedgerEvents = {
  /** Effective limits after the change (tier defaults already resolved, so replay never depends on configuration). */
  "ledger.configured": z
    .object({
      tier,
      dailyTokens: amount,
      maxConcurrent: z.number().int().positive(),
      /** "default" (first use, from the tier), "admin" (PUT /v1/admin/quotas), "upgrade" (tier upgrade). */
      source: z.enum(["default", "admin", "upgrade"]),
    })
    .loose(),
  "ledger.toppedUp": z.object({ tokens: z.number().int().positive() }).loose(),
  "ledger.reserved": z
    .object({ reservationId: z.string(), tokens: amount, expiresAt: z.string(), conversationId: z.string().optional() })
    .loose(),
  /**
   * `tokens` is what is billed (≤ the reservation), `releasedTokens` = reservedTokens - tokens.
   * `requestedTokens` is the usage reported when it was above the reservation (clamped, see docs/actors.md).
   * `late: true`: the reservation had expired before the commit arrived; billed within the headroom left.
   */
  "ledger.committed": z
    .object({
      reservationId: z.string(),
      tokens: amount,
      costMicros: amount,
      reservedTokens: amount,
      releasedTokens: amount,
      requestedTokens: amount.optional(),
      late: z.boolean().optional(),
    })
    .loose(),
  "ledger.released": z.object({ reservationId: z.string(), tokens: amount, reason: releaseReason }).loose(),
  /** A new UTC day `day` began; the figures are those of the day that ended. */
  "ledger.reset": z
    .object({ day: isoDay, resetsAt: z.string(), usedTokens: amount, usedMicros: amount, topUpConsumed: amount })
    .loose(),

  /** `dailyMicros` null = no daily cap; `maxConcurrent` null = no concurrency cap. */
  "budget.configured": z
    .object({ dailyMicros: nullableLimit, maxConcurrent: z.number().int().positive().nullable(), source: z.enum(["default", "admin"]) })
    .loose(),
  "budget.toppedUp": z.object({ costMicros: z.number().int().positive() }).loose(),
  "budget.reserved": z
    .object({ reservationId: z.string(), costMicros: amount, expiresAt: z.string(), conversationId: z.string().optional() })
    .loose(),
  "budget.committed": z
    .object({
      reservationId: z.string(),
      costMicros: amount,
      tokens: amount,
      reservedMicros: amount,
      releasedMicros: amount,
      requestedMicros: amount.optional(),
      late: z.boolean().optional(),
    })
    .loose(),
  "budget.released": z.object({ reservationId: z.string(), costMicros: amount, reason: releaseReason }).loose(),
  "budget.reset": z
    .object({ day: isoDay, resetsAt: z.string(), usedMicros: amount, usedTokens: amount, topUpConsumed: amount })
    .loose(),
} as const;

export type LedgerEventType = keyof typeof LedgerEvents;
export type LedgerEventData<T extends LedgerEventType> = z.infer<(typeof LedgerEvents)[T]>;
export type LedgerEvent = { [T in LedgerEventType]: { type: T; data: LedgerEventData<T> } }[LedgerEventType];

export function isLedgerEventType(t: string): t is LedgerEventType {
  return Object.hasOwn(LedgerEvents, t);
}

/**
 * Ledger aggregate ids. Tenant, user and project ids may contain ":", so the id is built with a
 * length prefix on the tenant to stay unambiguous: `user:<len>:<tenant>:<user>`.
 */
export function userLedgerId(tenantId: string, userId: string): string {
  return `user:${tenantId.length}:${tenantId}:${userId}`;
}

export function projectLedgerId(tenantId: string, projectId: string): string {
  return `project:${tenantId.length}:${tenantId}:${projectId}`;
}

export type LedgerRef =
  | { scope: "user"; tenantId: string; userId: string }
  | { scope: "project"; tenantId: string; projectId: string };

/** Inverse of userLedgerId / projectLedgerId; undefined for anything else. */
export function parseLedgerId(id: string): LedgerRef | undefined {
  const m = /^(user|project):(\d+):/.exec(id);
  if (!m) return undefined;
  const len = Number(m[2]);
  const rest = id.slice(m[0].length);
  if (rest.length < len + 1 || rest[len] !== ":") return undefined;
  const tenantId = rest.slice(0, len);
  const other = rest.slice(len + 1);
  if (other === "") return undefined;
  return m[1] === "user" ? { scope: "user", tenantId, userId: other } : { scope: "project", tenantId, projectId: other };
}
