import type { LedgerEvent } from "../../core/events/ledger.js";
import type { NeutralEvent } from "./machine.js";

/**
 * Translation between the machine's neutral events and the stored `ledger.*` (tokens) and
 * `budget.*` (cost micro-units) events of core/events/ledger.ts. Pure field renames; the stored
 * names are the documented ones, the neutral ones let one machine serve both ledgers.
 */
type Data<T extends LedgerEvent["type"]> = Extract<LedgerEvent, { type: T }>["data"];

export function userToStored(e: NeutralEvent): LedgerEvent {
  switch (e.type) {
    case "configured": {
      const d = e.data;
      if (d.tier === null || d.limit === null || d.maxConcurrent === null) throw new Error("a user ledger always has a tier and limits");
      return { type: "ledger.configured", data: { tier: d.tier, dailyTokens: d.limit, maxConcurrent: d.maxConcurrent, source: d.source } };
    }
    case "toppedUp":
      return { type: "ledger.toppedUp", data: { tokens: e.data.amount } };
    case "reserved": {
      const data: Data<"ledger.reserved"> = { reservationId: e.data.reservationId, tokens: e.data.amount, expiresAt: e.data.expiresAt };
      if (e.data.conversationId !== undefined) data.conversationId = e.data.conversationId;
      return { type: "ledger.reserved", data };
    }
    case "committed": {
      const d = e.data;
      const data: Data<"ledger.committed"> = {
        reservationId: d.reservationId,
        tokens: d.amount,
        costMicros: d.other,
        reservedTokens: d.reserved,
        releasedTokens: d.released,
      };
      if (d.requested !== undefined) data.requestedTokens = d.requested;
      if (d.late !== undefined) data.late = d.late;
      return { type: "ledger.committed", data };
    }
    case "released":
      return { type: "ledger.released", data: { reservationId: e.data.reservationId, tokens: e.data.amount, reason: e.data.reason } };
    case "reset": {
      const d = e.data;
      return {
        type: "ledger.reset",
        data: { day: d.day, resetsAt: d.resetsAt, usedTokens: d.used, usedMicros: d.usedOther, topUpConsumed: d.topUpConsumed },
      };
    }
  }
}

export function budgetToStored(e: NeutralEvent): LedgerEvent {
  switch (e.type) {
    case "configured": {
      const source = e.data.source === "upgrade" ? "default" : e.data.source;
      return { type: "budget.configured", data: { dailyMicros: e.data.limit, maxConcurrent: e.data.maxConcurrent, source } };
    }
    case "toppedUp":
      return { type: "budget.toppedUp", data: { costMicros: e.data.amount } };
    case "reserved": {
      const data: Data<"budget.reserved"> = { reservationId: e.data.reservationId, costMicros: e.data.amount, expiresAt: e.data.expiresAt };
      if (e.data.conversationId !== undefined) data.conversationId = e.data.conversationId;
      return { type: "budget.reserved", data };
    }
    case "committed": {
      const d = e.data;
      const data: Data<"budget.committed"> = {
        reservationId: d.reservationId,
        costMicros: d.amount,
        tokens: d.other,
        reservedMicros: d.reserved,
        releasedMicros: d.released,
      };
      if (d.requested !== undefined) data.requestedMicros = d.requested;
      if (d.late !== undefined) data.late = d.late;
      return { type: "budget.committed", data };
    }
    case "released":
      return { type: "budget.released", data: { reservationId: e.data.reservationId, costMicros: e.data.amount, reason: e.data.reason } };
    case "reset": {
      const d = e.data;
      return {
        type: "budget.reset",
        data: { day: d.day, resetsAt: d.resetsAt, usedMicros: d.used, usedTokens: d.usedOther, topUpConsumed: d.topUpConsumed },
      };
    }
  }
}

/** Stored → neutral; undefined for an event of the other ledger (a stream mixing both is corrupt). */
export function storedToNeutral(e: LedgerEvent, scope: "user" | "project"): NeutralEvent | undefined {
  if (scope === "user") {
    switch (e.type) {
      case "ledger.configured":
        return { type: "configured", data: { tier: e.data.tier, limit: e.data.dailyTokens, maxConcurrent: e.data.maxConcurrent, source: e.data.source } };
      case "ledger.toppedUp":
        return { type: "toppedUp", data: { amount: e.data.tokens } };
      case "ledger.reserved": {
        const data: Extract<NeutralEvent, { type: "reserved" }>["data"] = {
          reservationId: e.data.reservationId,
          amount: e.data.tokens,
          expiresAt: e.data.expiresAt,
        };
        if (e.data.conversationId !== undefined) data.conversationId = e.data.conversationId;
        return { type: "reserved", data };
      }
      case "ledger.committed": {
        const d = e.data;
        const data: Extract<NeutralEvent, { type: "committed" }>["data"] = {
          reservationId: d.reservationId,
          amount: d.tokens,
          other: d.costMicros,
          reserved: d.reservedTokens,
          released: d.releasedTokens,
        };
        if (d.requestedTokens !== undefined) data.requested = d.requestedTokens;
        if (d.late !== undefined) data.late = d.late;
        return { type: "committed", data };
      }
      case "ledger.released":
        return { type: "released", data: { reservationId: e.data.reservationId, amount: e.data.tokens, reason: e.data.reason } };
      case "ledger.reset":
        return {
          type: "reset",
          data: { day: e.data.day, resetsAt: e.data.resetsAt, used: e.data.usedTokens, usedOther: e.data.usedMicros, topUpConsumed: e.data.topUpConsumed },
        };
      default:
        return undefined;
    }
  }
  switch (e.type) {
    case "budget.configured":
      return { type: "configured", data: { tier: null, limit: e.data.dailyMicros, maxConcurrent: e.data.maxConcurrent, source: e.data.source } };
    case "budget.toppedUp":
      return { type: "toppedUp", data: { amount: e.data.costMicros } };
    case "budget.reserved": {
      const data: Extract<NeutralEvent, { type: "reserved" }>["data"] = {
        reservationId: e.data.reservationId,
        amount: e.data.costMicros,
        expiresAt: e.data.expiresAt,
      };
      if (e.data.conversationId !== undefined) data.conversationId = e.data.conversationId;
      return { type: "reserved", data };
    }
    case "budget.committed": {
      const d = e.data;
      const data: Extract<NeutralEvent, { type: "committed" }>["data"] = {
        reservationId: d.reservationId,
        amount: d.costMicros,
        other: d.tokens,
        reserved: d.reservedMicros,
        released: d.releasedMicros,
      };
      if (d.requestedMicros !== undefined) data.requested = d.requestedMicros;
      if (d.late !== undefined) data.late = d.late;
      return { type: "committed", data };
    }
    case "budget.released":
      return { type: "released", data: { reservationId: e.data.reservationId, amount: e.data.costMicros, reason: e.data.reason } };
    case "budget.reset":
      return {
        type: "reset",
        data: { day: e.data.day, resetsAt: e.data.resetsAt, used: e.data.usedMicros, usedOther: e.data.usedTokens, topUpConsumed: e.data.topUpConsumed },
      };
    default:
      return undefined;
  }
}
