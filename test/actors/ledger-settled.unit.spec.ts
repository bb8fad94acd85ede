import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fold } from "../../actors/decider.js";
import { bmSize } from "../../actors/bucket-map.js";
import { createBudgetDecider, budgetDecider, reservationStatus, type LedgerState } from "../../actors/ledger/index.js";

/**
 * A ledger remembers its recent settlements in two generations (actors/ledger/state.ts
 * `withSettlement`): what it holds stays bounded however busy its day, and the latest `generation`
 * settlements are always known, with their outcome.
 */
const at = "2026-11-21T10:00:00.000Z";

function run(decider: ReturnType<typeof createBudgetDecider>, s: LedgerState, raw: Record<string, unknown>): LedgerState {
  const d = decider.decide(decider.parseCommand(raw), s);
  if (!d.ok) throw new Error(d.rejection.message);
  return fold(decider, d.events, s);
}

describe("ledger: settled reservations in two bounded generations", () => {
  it("remembers the latest `generation` settlements with their outcome, and never more than two generations", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.boolean(), { maxLength: 60 }), (generation, commits) => {
        const decider = createBudgetDecider({ settledGeneration: generation });
        let s = decider.initialState();
        const outcomes: Array<[string, "committed" | "released"]> = [];
        commits.forEach((commit, i) => {
          const reservationId = `r${i}`;
          s = run(decider, s, { type: "reserve", at, reservationId, costMicros: 10 });
          s = commit
            ? run(decider, s, { type: "commit", at, reservationId, costMicros: 7, tokens: 3 })
            : run(decider, s, { type: "release", at, reservationId });
          outcomes.push([reservationId, commit ? "committed" : "released"]);
        });
        const held = bmSize(s.context.settled) + bmSize(s.context.settledBefore);
        expect(held).toBeLessThanOrEqual(2 * generation);
        expect(s.context.settledCount).toBe(bmSize(s.context.settled));
        for (const [id, outcome] of outcomes.slice(-generation)) expect(reservationStatus(s, id)).toBe(outcome);
        // A repeat of a remembered settlement decides nothing (the first answer stands).
        for (const [id] of outcomes.slice(-generation)) {
          const d = decider.decide(decider.parseCommand({ type: "commit", at, reservationId: id, costMicros: 7, tokens: 3 }), s);
          expect(d).toMatchObject({ ok: true, events: [] });
        }
      }),
      { numRuns: 200 },
    );
  });

  it("a busy budget's state stays small: 10,000 settlements hold at most two generations", () => {
    let s = budgetDecider.initialState();
    for (let i = 0; i < 10_000; i++) {
      s = run(budgetDecider, s, { type: "reserve", at, reservationId: `r${i}`, costMicros: 10 });
      s = run(budgetDecider, s, { type: "commit", at, reservationId: `r${i}`, costMicros: 7, tokens: 3 });
    }
    expect(bmSize(s.context.settled) + bmSize(s.context.settledBefore)).toBeLessThanOrEqual(2 * 2048);
    expect(reservationStatus(s, "r9999")).toBe("committed");
    expect(reservationStatus(s, "r0")).toBeUndefined();
    expect(JSON.stringify(budgetDecider.toSnapshot(s)).length).toBeLessThan(400_000);
  });

  it("a reservation settled twice (expired, then committed late) is counted once", () => {
    const decider = createBudgetDecider({ settledGeneration: 8, reservationTtlMs: 1000 });
    let s = run(decider, decider.initialState(), { type: "reserve", at, reservationId: "r0", costMicros: 10 });
    s = run(decider, s, { type: "expire", at: "2026-11-21T10:00:05.000Z" });
    expect(reservationStatus(s, "r0")).toBe("expired");
    s = run(decider, s, { type: "commit", at: "2026-11-21T10:00:06.000Z", reservationId: "r0", costMicros: 7, tokens: 3 });
    expect(reservationStatus(s, "r0")).toBe("committed");
    expect(s.context.settledCount).toBe(1);
    expect(bmSize(s.context.settled)).toBe(1);
  });

  it("a snapshot written before the count existed is counted once, then carries on", () => {
    const decider = createBudgetDecider({ settledGeneration: 3 });
    let s = decider.initialState();
    for (let i = 0; i < 2; i++) {
      s = run(decider, s, { type: "reserve", at, reservationId: `r${i}`, costMicros: 10 });
      s = run(decider, s, { type: "commit", at, reservationId: `r${i}`, costMicros: 7, tokens: 3 });
    }
    const json = JSON.parse(JSON.stringify(decider.toSnapshot(s))) as { context: Record<string, unknown> };
    delete json.context.settledCount;
    let back = decider.fromSnapshot(json);
    expect(back.context.settledCount).toBeUndefined();
    for (let i = 2; i < 4; i++) {
      back = run(decider, back, { type: "reserve", at, reservationId: `r${i}`, costMicros: 10 });
      back = run(decider, back, { type: "commit", at, reservationId: `r${i}`, costMicros: 7, tokens: 3 });
    }
    // r0..r2 filled the first generation; r3 started the second.
    expect(back.context.settledCount).toBe(1);
    for (const id of ["r1", "r2", "r3"]) expect(reservationStatus(back, id)).toBe("committed");
  });
});
