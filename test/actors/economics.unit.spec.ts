import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { conversationDecider, type ConversationState } from "../../actors/conversation/index.js";
import { fold, type DecidedEvent, type Decider } from "../../actors/decider.js";
import {
  DEFAULT_PRICES,
  costMicros,
  estimatePromptTokens,
  estimateTokens,
  nextMidnight,
  reservationFor,
  utcDay,
} from "../../actors/economics/index.js";
import { budgetDecider, ledgerDecider, type LedgerState } from "../../actors/ledger/index.js";
import type { LedgerEvent } from "../../core/events/ledger.js";

/**
 * Economics as a property (issue 3): any interleaving of sends, deltas, completions, cancels,
 * failures, top-ups, redeliveries and the passing of days, across several conversations of one
 * user, driven the way the runtime drives the deciders:
 *   decide(postMessage) on the conversation → reserve on the ledger (reservationId = replyId) →
 *   append the conversation's events, or `reject` it; at the end of a reply → commit the usage.
 */
type Step =
  | { kind: "send"; conv: number; chars: number; maxTokens: number }
  | { kind: "delta"; conv: number }
  | { kind: "complete"; conv: number; extraInput: number }
  | { kind: "cancel"; conv: number }
  | { kind: "fail"; conv: number }
  | { kind: "topUp"; tokens: number }
  | { kind: "redeliver" }
  | { kind: "advance"; minutes: number };

const CONVS = 3;
const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("send" as const), conv: fc.nat(CONVS - 1), chars: fc.integer({ min: 1, max: 4000 }), maxTokens: fc.integer({ min: 1, max: 8000 }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("delta" as const), conv: fc.nat(CONVS - 1) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("complete" as const), conv: fc.nat(CONVS - 1), extraInput: fc.integer({ min: 0, max: 50 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("cancel" as const), conv: fc.nat(CONVS - 1) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("fail" as const), conv: fc.nat(CONVS - 1) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("topUp" as const), tokens: fc.integer({ min: 1, max: 5000 }) }), weight: 1 },
  { arbitrary: fc.constant({ kind: "redeliver" as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("advance" as const), minutes: fc.integer({ min: 1, max: 600 }) }), weight: 1 },
);

function applyAll<C, E extends DecidedEvent, S>(d: Decider<C, E, S>, s: S, cmd: unknown, log: E[]): { state: S; events: E[]; ok: boolean; code?: string } {
  const decision = d.decide(d.parseCommand(cmd), s);
  if (!decision.ok) return { state: s, events: [], ok: false, code: decision.rejection.code };
  log.push(...decision.events);
  return { state: fold(d, decision.events, s), events: decision.events, ok: true };
}

class World {
  clock = Date.parse("2026-11-21T20:00:00.000Z");
  ledger: LedgerState = ledgerDecider.initialState();
  ledgerLog: LedgerEvent[] = [];
  budget: LedgerState = budgetDecider.initialState();
  budgetLog: LedgerEvent[] = [];
  convs: ConversationState[] = [];
  convLogs: DecidedEvent[][] = [];
  seq = 0;
  lastLedgerCmd: unknown = null;

  constructor(
    readonly tier: "anonymous" | "registered",
    budgetMicros: number | null = null,
  ) {
    if (budgetMicros !== null) this.budgetCmd({ type: "configure", at: this.at(), dailyMicros: budgetMicros });
    for (let i = 0; i < CONVS; i++) {
      const log: DecidedEvent[] = [];
      const r = applyAll(conversationDecider, conversationDecider.initialState(), { type: "create", at: this.at(), ownerId: "u", tenantId: "t" }, log);
      this.convs.push(r.state);
      this.convLogs.push(log);
    }
  }
  at(): string {
    return new Date(this.clock).toISOString();
  }
  ledgerCmd(cmd: Record<string, unknown>) {
    const r = applyAll(ledgerDecider, this.ledger, { ...cmd, tier: this.tier }, this.ledgerLog);
    // Only an accepted command is redelivered as-is: a refused reserve is re-decided by the runtime
    // as part of the whole send (the conversation got `reject`), which a new send step models.
    if (r.ok) this.lastLedgerCmd = cmd;
    this.ledger = r.state;
    return r;
  }
  budgetCmd(cmd: Record<string, unknown>) {
    const r = applyAll(budgetDecider, this.budget, cmd, this.budgetLog);
    this.budget = r.state;
    return r;
  }
  conv(i: number, cmd: Record<string, unknown>) {
    const r = applyAll(conversationDecider, this.convs[i] as ConversationState, { ...cmd, at: this.at() }, this.convLogs[i] as DecidedEvent[]);
    this.convs[i] = r.state;
    return r;
  }
  /** The runtime's end of a reply: the conversation event, then the commit on the ledger. */
  finish(i: number, kind: "completeReply" | "cancelReply" | "failReply", extraInput = 0) {
    const reply = (this.convs[i] as ConversationState).context.reply;
    if (reply === null) return;
    const usage = { inputTokens: reply.inputTokens + extraInput, outputTokens: Math.min(reply.nextIndex, reply.maxTokens) };
    const cost = costMicros(DEFAULT_PRICES, reply.model, usage);
    const extra = kind === "completeReply" ? { finishReason: "stop" } : kind === "failReply" ? { code: "UNAVAILABLE", message: "x" } : {};
    const r = this.conv(i, { type: kind, replyId: reply.replyId, usage, costMicros: cost, ...extra });
    expect(r.ok).toBe(true);
    this.ledgerCmd({ type: "commit", at: this.at(), reservationId: reply.replyId, tokens: usage.inputTokens + usage.outputTokens, costMicros: cost });
    this.budgetCmd({ type: "commit", at: this.at(), reservationId: reply.replyId, costMicros: cost, tokens: usage.inputTokens + usage.outputTokens });
  }
  run(s: Step) {
    switch (s.kind) {
      case "send": {
        const n = ++this.seq;
        const text = "x".repeat(s.chars);
        const post = { type: "postMessage", messageId: `m${n}`, replyId: `r${n}`, clientMessageId: `c${n}`, text, userId: "u", maxTokens: s.maxTokens };
        // Pre-check on the conversation: a running reply is a CONFLICT before any quota is touched.
        const pre = conversationDecider.decide(conversationDecider.parseCommand({ ...post, at: this.at() }), this.convs[s.conv] as ConversationState);
        if (!pre.ok) return;
        const amounts = reservationFor(DEFAULT_PRICES, "sim-1", text, s.maxTokens);
        const res = this.ledgerCmd({ type: "reserve", at: this.at(), reservationId: `r${n}`, tokens: amounts.tokens });
        let refused = res.ok ? undefined : res.code;
        if (res.ok) {
          // The project budget second; if it refuses, the user's reservation is released again.
          const b = this.budgetCmd({ type: "reserve", at: this.at(), reservationId: `r${n}`, costMicros: amounts.costMicros });
          if (!b.ok) {
            refused = b.code;
            this.ledgerCmd({ type: "release", at: this.at(), reservationId: `r${n}` });
          }
        }
        if (refused !== undefined) {
          expect(["QUOTA_EXCEEDED", "CONCURRENCY_LIMIT"]).toContain(refused);
          expect(this.conv(s.conv, { type: "reject", clientMessageId: `c${n}`, code: refused, message: "refused" }).ok).toBe(true);
          return;
        }
        expect(this.conv(s.conv, post).ok).toBe(true);
        return;
      }
      case "delta": {
        const reply = (this.convs[s.conv] as ConversationState).context.reply;
        if (reply === null || reply.nextIndex >= reply.maxTokens) return;
        expect(this.conv(s.conv, { type: "appendDelta", replyId: reply.replyId, index: reply.nextIndex, text: "t " }).ok).toBe(true);
        return;
      }
      case "complete":
        return this.finish(s.conv, "completeReply", s.extraInput);
      case "cancel":
        return this.finish(s.conv, "cancelReply");
      case "fail":
        return this.finish(s.conv, "failReply");
      case "topUp":
        this.ledgerCmd({ type: "topUp", at: this.at(), tokens: s.tokens });
        return;
      case "redeliver": {
        // At-least-once delivery: the same ledger command again must change nothing but the day.
        if (this.lastLedgerCmd === null) return;
        const before = this.ledger.context;
        const cmd: Record<string, unknown> = { ...(this.lastLedgerCmd as Record<string, unknown>), at: this.at() };
        if (cmd.type === "topUp") return; // top-ups are deduped by command id in the store, not here
        const r = this.ledgerCmd(cmd);
        expect(r.events.filter((e) => e.type !== "ledger.reset")).toEqual([]);
        if (r.events.length === 0) expect(this.ledger.context).toEqual(before);
        return;
      }
      case "advance": {
        // The runtime's reply deadline (docs/actors.md): a reply still running when its reservation
        // would expire is ended as failed first, so expiry only ever meets orphaned reservations.
        const next = this.clock + s.minutes * 60_000;
        for (let i = 0; i < CONVS; i++) {
          const reply = (this.convs[i] as ConversationState).context.reply;
          const open = reply === null ? undefined : this.ledger.context.open[reply.replyId];
          if (open !== undefined && Date.parse(open.expiresAt) <= next) this.finish(i, "failReply");
        }
        this.clock = next;
        return;
      }
    }
  }
  checkInvariants() {
    const c = this.ledger.context;
    // I8: committed + reserved never exceeds the limit (plus top-ups).
    // A user ledger has a cap from its first command on.
    expect(c.limit === null).toBe(!c.configured);
    expect(c.used + c.reserved).toBeLessThanOrEqual((c.limit ?? 0) + c.topUp);
    expect(c.reserved).toBe(Object.values(c.open).reduce((a, r) => a + r.amount, 0));
    expect(Object.keys(c.open).length).toBeLessThanOrEqual(c.maxConcurrent ?? Infinity);
    // Every open reservation belongs to a running reply and vice versa.
    const running = this.convs.map((s) => s.context.reply?.replyId).filter((x): x is string => x !== undefined);
    expect(Object.keys(c.open).sort()).toEqual(running.sort());
    // The ledger equals the fold of its events.
    expect(fold(ledgerDecider, this.ledgerLog).context).toEqual(c);
    // The project budget: the same invariant in micro-units, the same open reservations.
    const b = this.budget.context;
    if (b.limit !== null) expect(b.used + b.reserved).toBeLessThanOrEqual(b.limit + b.topUp);
    expect(Object.keys(b.open).sort()).toEqual(running.sort());
    expect(fold(budgetDecider, this.budgetLog).context).toEqual(b);
  }
}

function settlementCounts(log: LedgerEvent[]) {
  const counts = new Map<string, { reserved: number; settled: number }>();
  for (const e of log) {
    if (e.type === "ledger.reserved" || e.type === "budget.reserved") {
      const c = counts.get(e.data.reservationId) ?? { reserved: 0, settled: 0 };
      c.reserved++;
      counts.set(e.data.reservationId, c);
    }
    if (e.type === "ledger.committed" || e.type === "ledger.released" || e.type === "budget.committed" || e.type === "budget.released") {
      const c = counts.get(e.data.reservationId) ?? { reserved: 0, settled: 0 };
      c.settled++;
      counts.set(e.data.reservationId, c);
    }
  }
  return counts;
}

describe("economics: ledger + conversations under any interleaving", () => {
  it("I8 holds on the user ledger and the project budget, every reservation is settled exactly once, each is the fold of its events", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("anonymous" as const, "registered" as const),
        fc.option(fc.integer({ min: 0, max: 60_000 }), { nil: null }),
        fc.array(step, { minLength: 1, maxLength: 80 }),
        (tier, budgetMicros, steps) => {
        const w = new World(tier, budgetMicros);
        for (const s of steps) {
          w.run(s);
          w.checkInvariants();
        }
        // Drain: every running reply ends.
        for (let i = 0; i < CONVS; i++) w.finish(i, "completeReply");
        w.checkInvariants();
        expect(w.ledger.context.reserved).toBe(0);
        expect(w.budget.context.reserved).toBe(0);
        for (const log of [w.ledgerLog, w.budgetLog]) {
          for (const [id, c] of settlementCounts(log)) {
            expect(c.reserved, id).toBe(1);
            expect(c.settled, id).toBe(1);
          }
        }
        // Conversations: the fold of each log is the state, snapshots round-trip.
        for (let i = 0; i < CONVS; i++) {
          const log = w.convLogs[i] as DecidedEvent[];
          const refolded = fold(conversationDecider, log.map((e) => conversationDecider.parseEvent(e)));
          expect(refolded.context).toEqual((w.convs[i] as ConversationState).context);
        }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("deciders: fold is deterministic and snapshots round-trip at any point", () => {
  it("folding the same events twice, or from a JSON snapshot of any prefix, gives the same state", () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), fc.nat(), (steps, cut) => {
        const w = new World("registered");
        for (const s of steps) w.run(s);
        const log = w.ledgerLog;
        const k = log.length === 0 ? 0 : cut % (log.length + 1);
        const a = fold(ledgerDecider, log);
        const b = fold(ledgerDecider, log);
        expect(a.context).toEqual(b.context);
        const snap = JSON.parse(JSON.stringify(ledgerDecider.toSnapshot(fold(ledgerDecider, log.slice(0, k)))));
        const fromSnap = fold(ledgerDecider, log.slice(k), ledgerDecider.fromSnapshot(snap));
        expect(fromSnap.context).toEqual(a.context);
        expect(fromSnap.value).toEqual(a.value);

        const clog = w.convLogs[0] as DecidedEvent[];
        const ck = clog.length === 0 ? 0 : cut % (clog.length + 1);
        const events = clog.map((e) => conversationDecider.parseEvent(e));
        const full = fold(conversationDecider, events);
        const csnap = JSON.parse(JSON.stringify(conversationDecider.toSnapshot(fold(conversationDecider, events.slice(0, ck)))));
        const cfrom = fold(conversationDecider, events.slice(ck), conversationDecider.fromSnapshot(csnap));
        expect(cfrom.context).toEqual(full.context);
        expect(cfrom.value).toEqual(full.value);
      }),
      { numRuns: 100 },
    );
  });
});

describe("economics: money is integers", () => {
  it("cost is an integer, monotone in usage, exact for huge token counts", () => {
    fc.assert(
      fc.property(fc.nat(10_000_000), fc.nat(10_000_000), fc.nat(1000), (i, o, d) => {
        const c = costMicros(DEFAULT_PRICES, "gpt-4o", { inputTokens: i, outputTokens: o });
        expect(Number.isSafeInteger(c)).toBe(true);
        expect(costMicros(DEFAULT_PRICES, "gpt-4o", { inputTokens: i, outputTokens: o + d })).toBeGreaterThanOrEqual(c);
      }),
    );
    // 10^9 tokens × 10^10 micros/M overflows doubles' exact range in the product, not in BigInt.
    const table = { default: { inputPerMTok: 10_000_000_000, outputPerMTok: 0 }, models: {} };
    expect(costMicros(table, "x", { inputTokens: 1_000_000_001, outputTokens: 0 })).toBe(10_000_000_010_000);
    expect(costMicros(DEFAULT_PRICES, "sim-1", { inputTokens: 1, outputTokens: 0 })).toBe(1);
    expect(costMicros(DEFAULT_PRICES, "sim-1", { inputTokens: 0, outputTokens: 0 })).toBe(0);
  });
  it("a reservation covers any commit of at most maxTokens output", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 500 }), fc.integer({ min: 1, max: 4096 }), fc.nat(4096), (text, maxTokens, out) => {
        const r = reservationFor(DEFAULT_PRICES, "gpt-4o", text, maxTokens);
        const o = Math.min(out, maxTokens);
        expect(r.tokens).toBe(estimatePromptTokens(text) + maxTokens);
        expect(costMicros(DEFAULT_PRICES, "gpt-4o", { inputTokens: r.inputTokens, outputTokens: o })).toBeLessThanOrEqual(r.costMicros);
      }),
    );
  });
  it("utcDay names the UTC day of any instant, whatever day was asked before", () => {
    const day = (iso: string) => new Date(Date.parse(iso)).toISOString().slice(0, 10);
    const instant = fc.record({
      ms: fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2200, 0, 1) }),
      offsetMin: fc.integer({ min: -14 * 60, max: 14 * 60 }),
    }).map(({ ms, offsetMin }) => {
      if (offsetMin === 0) return new Date(ms).toISOString();
      // The same instant written with a UTC offset ("…T01:30:00.000+02:00").
      const local = new Date(ms + offsetMin * 60_000).toISOString().slice(0, 23);
      const a = Math.abs(offsetMin);
      return `${local}${offsetMin < 0 ? "-" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
    });
    fc.assert(fc.property(fc.array(instant, { minLength: 1, maxLength: 20 }), (isos) => isos.every((iso) => utcDay(iso) === day(iso))), { numRuns: 500 });
    // Forms Date.parse rolls over: the day is the instant's, not the text's.
    expect(utcDay("2026-02-30T00:00:00Z")).toBe("2026-03-02");
    expect(utcDay("2026-12-06T24:00:00Z")).toBe("2026-12-07");
    expect(() => utcDay("2026-13-01T00:00:00Z")).toThrow(RangeError);
  });
  it("token estimates and UTC days are deterministic", () => {
    expect(estimateTokens("")).toBe(0);
    expect(estimateTokens("abcd")).toBe(1);
    expect(estimateTokens("abcde")).toBe(2);
    expect(estimateTokens("😀😀😀😀")).toBe(1);
    expect(utcDay("2026-11-21T23:59:59.999-01:00")).toBe("2026-11-22");
    expect(nextMidnight("2026-12-31")).toBe("2027-01-01T00:00:00.000Z");
    expect(nextMidnight("2026-12-31T23:59:59.999Z")).toBe("2027-01-01T00:00:00.000Z");
    expect(nextMidnight("2026-12-31T23:30:00.000-01:00")).toBe("2027-01-02T00:00:00.000Z");
    expect(() => nextMidnight("yesterday")).toThrow(RangeError);
  });
});
