import { assign, setup } from "xstate";
import type { Tier } from "../../core/events/session.js";
import type { DecidedEvent, Rejection } from "../decider.js";
import { addMs, nextMidnight, parseInstant, secondsUntil, utcDay } from "../economics/day.js";
import { DEFAULT_TIERS, tierRank, type TierTable } from "../economics/tiers.js";
import { SETTLED_GENERATION, initialLedgerContext, settlementOf, withSettlement, type LedgerContext, type Settlement } from "./state.js";

/**
 * The quota ledger as an XState v5 machine, in neutral units (see state.ts): one machine serves the
 * user ledger (tokens) and the project budget (cost micro-units); decider.ts translates commands and
 * events to and from the unit-specific names (`ledger.*` / `budget.*`).
 *
 *   unconfigured ──configured──▶ active
 *
 * A command is decided in two steps, both on this machine:
 * 1. `cmd.housekeep` emits what must be true before the command applies: the reset of a new UTC
 *    day, the first configuration (tier defaults), an upgrade to the caller's higher tier, and —
 *    before a reserve or an explicit expire — the release of reservations past their expiry.
 * 2. the command itself, decided on the state with those events folded in, so a reserve just after
 *    midnight sees the fresh day and a reserve blocked by an orphaned reservation sees the slot free.
 */
export type LedgerScope = "user" | "project";

export interface LedgerMachineOptions {
  scope: LedgerScope;
  tiers?: TierTable;
  /**
   * How long a reservation may stay open before a later reserve (or `expire`) releases it. It only
   * matters for a reservation whose reply never started (the runtime died between reserve and the
   * conversation's append and the command was dead-lettered): a running reply is always settled by
   * its owner or the next owner. The runtime must end any reply before this deadline (reply
   * deadline < TTL); a commit that still arrives after expiry is billed late, within the headroom.
   */
  reservationTtlMs?: number;
  /** Settlements per generation of the settled maps [SETTLED_GENERATION] (state.ts `withSettlement`). */
  settledGeneration?: number;
}

export const DEFAULT_RESERVATION_TTL_MS = 2 * 3_600_000;

// ---- neutral events (evolve)

export interface ConfiguredData {
  tier: Tier | null;
  limit: number | null;
  maxConcurrent: number | null;
  source: "default" | "admin" | "upgrade";
}
export interface ReservedData {
  reservationId: string;
  amount: number;
  expiresAt: string;
  conversationId?: string;
}
export interface CommittedData {
  reservationId: string;
  amount: number;
  other: number;
  reserved: number;
  released: number;
  requested?: number;
  late?: boolean;
}
export interface ReleasedData {
  reservationId: string;
  amount: number;
  reason: "released" | "expired";
}
export interface ResetData {
  day: string;
  resetsAt: string;
  used: number;
  usedOther: number;
  topUpConsumed: number;
}

export type NeutralEvent =
  | { type: "configured"; data: ConfiguredData }
  | { type: "toppedUp"; data: { amount: number } }
  | { type: "reserved"; data: ReservedData }
  | { type: "committed"; data: CommittedData }
  | { type: "released"; data: ReleasedData }
  | { type: "reset"; data: ResetData };

// ---- neutral commands (decide)

export type NeutralCommand =
  | { type: "cmd.housekeep"; at: string; tierHint: Tier | undefined; expire: boolean; configuring: boolean }
  | { type: "cmd.configure"; at: string; tier: Tier | undefined; limit: number | null | undefined; maxConcurrent: number | null | undefined }
  | { type: "cmd.topUp"; at: string; amount: number }
  | { type: "cmd.reserve"; at: string; reservationId: string; amount: number; conversationId: string | undefined }
  | { type: "cmd.commit"; at: string; reservationId: string; amount: number; other: number }
  | { type: "cmd.release"; at: string; reservationId: string }
  | { type: "cmd.expire"; at: string };

type EmitAll = { type: "emitAll"; params: { events: DecidedEvent[] } };

/** Headroom left under the cap (`limit + topUp - used - reserved`); Infinity without a cap. */
export function headroom(ctx: LedgerContext): number {
  return ctx.limit === null ? Number.POSITIVE_INFINITY : Math.max(0, ctx.limit + ctx.topUp - ctx.used - ctx.reserved);
}

export function createLedgerMachine(opts: LedgerMachineOptions) {
  const tiers = opts.tiers ?? DEFAULT_TIERS;
  const ttl = opts.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
  const generation = Math.max(1, Math.floor(opts.settledGeneration ?? SETTLED_GENERATION));
  const user = opts.scope === "user";

  function housekeeping(ctx: LedgerContext, cmd: Extract<NeutralCommand, { type: "cmd.housekeep" }>): NeutralEvent[] {
    const out: NeutralEvent[] = [];
    const day = utcDay(cmd.at);
    // A command stamped with an earlier day (a slow sender, a redelivery) never moves the day back.
    if (ctx.day === null || day > ctx.day) {
      const overflow = ctx.limit === null ? 0 : Math.max(0, ctx.used - ctx.limit);
      out.push({
        type: "reset",
        data: { day, resetsAt: nextMidnight(day), used: ctx.used, usedOther: ctx.usedOther, topUpConsumed: Math.min(ctx.topUp, overflow) },
      });
    }
    if (!ctx.configured && !cmd.configuring) {
      if (user) {
        const t = cmd.tierHint ?? "anonymous";
        const d = tiers[t];
        out.push({ type: "configured", data: { tier: t, limit: d.dailyTokens, maxConcurrent: d.maxConcurrent, source: "default" } });
      } else {
        out.push({ type: "configured", data: { tier: null, limit: null, maxConcurrent: null, source: "default" } });
      }
    } else if (
      user &&
      ctx.configured &&
      ctx.source !== "admin" &&
      cmd.tierHint !== undefined &&
      ctx.tier !== null &&
      tierRank(cmd.tierHint) > tierRank(ctx.tier)
    ) {
      const d = tiers[cmd.tierHint];
      out.push({ type: "configured", data: { tier: cmd.tierHint, limit: d.dailyTokens, maxConcurrent: d.maxConcurrent, source: "upgrade" } });
    }
    if (cmd.expire) {
      const now = parseInstant(cmd.at);
      for (const [reservationId, r] of Object.entries(ctx.open)) {
        if (parseInstant(r.expiresAt) <= now) out.push({ type: "released", data: { reservationId, amount: r.amount, reason: "expired" } });
      }
    }
    return out;
  }

  function configuration(ctx: LedgerContext, cmd: Extract<NeutralCommand, { type: "cmd.configure" }>): NeutralEvent[] {
    let next: ConfiguredData;
    if (user) {
      const t = cmd.tier ?? ctx.tier ?? "anonymous";
      // A new tier brings its defaults, unless the same command overrides them.
      const fresh = !ctx.configured || t !== ctx.tier;
      const d = tiers[t];
      next = {
        tier: t,
        limit: cmd.limit ?? (fresh ? d.dailyTokens : ctx.limit),
        maxConcurrent: cmd.maxConcurrent ?? (fresh ? d.maxConcurrent : ctx.maxConcurrent),
        source: "admin",
      };
    } else {
      next = {
        tier: null,
        limit: cmd.limit === undefined ? ctx.limit : cmd.limit,
        maxConcurrent: cmd.maxConcurrent === undefined ? ctx.maxConcurrent : cmd.maxConcurrent,
        source: "admin",
      };
    }
    const same =
      ctx.configured && ctx.source === "admin" && next.tier === ctx.tier && next.limit === ctx.limit && next.maxConcurrent === ctx.maxConcurrent;
    return same ? [] : [{ type: "configured", data: next }];
  }

  function commitment(ctx: LedgerContext, cmd: Extract<NeutralCommand, { type: "cmd.commit" }>): NeutralEvent[] {
    const status = settlementOf(ctx, cmd.reservationId);
    if (status === "committed" || status === "released") return [];
    const open = ctx.open[cmd.reservationId];
    if (open !== undefined) {
      // Usage above the reservation is clamped: the responder is capped at maxTokens, so only an
      // input estimate that fell short can exceed it, and billing it would break I8.
      const billed = Math.min(cmd.amount, open.amount);
      const data: CommittedData = {
        reservationId: cmd.reservationId,
        amount: billed,
        other: cmd.other,
        reserved: open.amount,
        released: open.amount - billed,
      };
      if (cmd.amount > billed) data.requested = cmd.amount;
      return [{ type: "committed", data }];
    }
    // Expired (or never seen): the usage happened, bill what still fits under the cap.
    const billed = Math.min(cmd.amount, headroom(ctx));
    const data: CommittedData = { reservationId: cmd.reservationId, amount: billed, other: cmd.other, reserved: 0, released: 0, late: true };
    if (cmd.amount > billed) data.requested = cmd.amount;
    return [{ type: "committed", data }];
  }

  const emitAll = (events: NeutralEvent[]): EmitAll => ({ type: "emitAll", params: { events } });

  return setup({
    types: { context: {} as LedgerContext, events: {} as NeutralCommand | NeutralEvent },
    actions: {
      // Never executed: decide() reads the params of the planned actions.
      reject: (_, _params: Rejection) => {},
      emitAll: (_, _params: { events: DecidedEvent[] }) => {},
    },
  }).createMachine({
    id: user ? "ledger" : "budget",
    context: initialLedgerContext(),
    initial: "unconfigured",
    on: {
      "cmd.housekeep": { actions: { type: "emitAll", params: ({ context, event }) => emitAll(housekeeping(context, event)).params } },
      "cmd.configure": { actions: { type: "emitAll", params: ({ context, event }) => emitAll(configuration(context, event)).params } },
      "cmd.topUp": {
        actions: { type: "emitAll", params: ({ event }) => emitAll([{ type: "toppedUp", data: { amount: event.amount } }]).params },
      },
      "cmd.reserve": [
        // The same reservation id again (a redelivered command): the first answer stands.
        { guard: ({ context, event }) => settlementOf(context, event.reservationId) !== undefined },
        {
          guard: ({ context }) => context.maxConcurrent !== null && Object.keys(context.open).length >= context.maxConcurrent,
          actions: {
            type: "reject",
            params: ({ context }) => ({
              code: "CONCURRENCY_LIMIT" as const,
              message: `at most ${context.maxConcurrent} replies may run at once`,
              details: { maxConcurrent: context.maxConcurrent },
              retryAfter: 1,
            }),
          },
        },
        {
          guard: ({ context, event }) => event.amount > headroom(context),
          actions: {
            type: "reject",
            params: ({ context, event }) => ({
              code: "QUOTA_EXCEEDED" as const,
              message: user ? "daily token quota exceeded" : "daily project budget exceeded",
              details: { requested: event.amount, remaining: headroom(context), resetsAt: context.resetsAt },
              retryAfter: context.resetsAt === null ? 60 : secondsUntil(event.at, context.resetsAt),
            }),
          },
        },
        {
          actions: {
            type: "emitAll",
            params: ({ event }) => {
              const data: ReservedData = { reservationId: event.reservationId, amount: event.amount, expiresAt: addMs(event.at, ttl) };
              if (event.conversationId !== undefined) data.conversationId = event.conversationId;
              return emitAll([{ type: "reserved", data }]).params;
            },
          },
        },
      ],
      "cmd.commit": { actions: { type: "emitAll", params: ({ context, event }) => emitAll(commitment(context, event)).params } },
      "cmd.release": {
        actions: {
          type: "emitAll",
          params: ({ context, event }) => {
            const open = context.open[event.reservationId];
            // Releasing what is not open (already settled, or never reserved) changes nothing.
            return emitAll(
              open === undefined ? [] : [{ type: "released", data: { reservationId: event.reservationId, amount: open.amount, reason: "released" } }],
            ).params;
          },
        },
      },
      // Housekeeping with `expire: true` already released what had expired.
      "cmd.expire": {},

      configured: {
        target: ".active",
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          configured: true,
          tier: event.data.tier,
          source: event.data.source,
          limit: event.data.limit,
          maxConcurrent: event.data.maxConcurrent,
        })),
      },
      toppedUp: { actions: assign(({ context, event }) => ({ version: context.version + 1, topUp: context.topUp + event.data.amount })) },
      reserved: {
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          reserved: context.reserved + event.data.amount,
          open: { ...context.open, [event.data.reservationId]: { amount: event.data.amount, expiresAt: event.data.expiresAt } },
        })),
      },
      committed: {
        actions: assign(({ context, event }) => {
          const { [event.data.reservationId]: was, ...open } = context.open;
          return {
            version: context.version + 1,
            open,
            reserved: context.reserved - (was?.amount ?? 0),
            used: context.used + event.data.amount,
            usedOther: context.usedOther + event.data.other,
            ...withSettlement(context, event.data.reservationId, "committed", generation),
          };
        }),
      },
      released: {
        actions: assign(({ context, event }) => {
          const { [event.data.reservationId]: was, ...open } = context.open;
          return {
            version: context.version + 1,
            open,
            reserved: context.reserved - (was?.amount ?? 0),
            ...withSettlement(context, event.data.reservationId, event.data.reason, generation),
          };
        }),
      },
      reset: {
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          day: event.data.day,
          resetsAt: event.data.resetsAt,
          topUp: context.topUp - event.data.topUpConsumed,
          used: 0,
          usedOther: 0,
          // Settled ids are kept one extra day so a late redelivery is still recognised, then dropped
          // so the state does not grow without bound.
          settledBefore: context.settled,
          settled: {},
          settledCount: 0,
        })),
      },
    },
    states: { unconfigured: {}, active: {} },
  });
}

export type LedgerMachine = ReturnType<typeof createLedgerMachine>;
