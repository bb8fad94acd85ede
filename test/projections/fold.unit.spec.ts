import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { emptyFoldState, foldEvent, RejectedEvent, type ProjectedEvent } from "../../projections/fold.js";
import { parseInt8, parseNumeric, toInt } from "../../projections/int8.js";
import { chatWorkload, type TestEvent } from "./fixtures.js";

/** The pure projection logic, given / when / then, without a database. */
function project(events: TestEvent[]) {
  const s = emptyFoldState();
  const versions = new Map<string, number>();
  let n = 0;
  for (const e of events) {
    const v = (versions.get(e.id) ?? 0) + 1;
    versions.set(e.id, v);
    const ev: ProjectedEvent = { partition: 0, logId: `${++n}-0`, stream: `{p0}:es:${e.kind}:${e.id}`, kind: e.kind, aggregateId: e.id, offset: `${n}-0`, version: v, type: e.type, at: e.at, data: e.data };
    foldEvent(s, ev);
  }
  return s;
}

describe("fold", () => {
  it("spend equals the usage of every finished reply, whatever the interleaving (I8)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 6 }), (seed, conversations) => {
        const events = chatWorkload(seed, { conversations, turns: 3, deltas: 5 });
        const s = project(events);
        let cost = 0;
        let replies = 0;
        for (const e of events) {
          if (e.type === "assistant.completed" || e.type === "assistant.cancelled" || e.type === "assistant.failed") {
            cost += (e.data as { costMicros: number }).costMicros;
            replies++;
          }
        }
        const rows = [...s.spend.values()];
        expect(rows.reduce((a, r) => a + r.cost_micros, 0)).toBe(cost);
        expect(rows.reduce((a, r) => a + r.messages, 0)).toBe(replies);
        // Each reply's text equals the concatenation of its deltas or its completed text.
        for (const m of s.messages.values()) if (m?.role === "assistant") expect(m.status).not.toBe("streaming");
      }),
      { numRuns: 50 },
    );
  });

  it("an event for an unknown conversation is rejected, not guessed", () => {
    expect(() => project([{ kind: "conversation", id: "x", type: "message.received", at: "2026-11-21T00:00:00Z", data: { messageId: "m", clientMessageId: "c", userId: "u", text: "t" } }])).toThrow(RejectedEvent);
  });

  it("unknown event types are ignored (the contract only grows)", () => {
    const s = project([{ kind: "conversation", id: "x", type: "conversation.renamed", at: "2026-11-21T00:00:00Z", data: {} }]);
    expect(s.dirty.conversations.size).toBe(0);
  });
});

describe("int8 normalisation", () => {
  it("parses exact integers and refuses to round money", () => {
    expect(parseInt8("9007199254740991")).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => parseInt8("9007199254740993")).toThrow(RangeError);
    expect(parseNumeric("123")).toBe(123);
    expect(parseNumeric("1.5")).toBe(1.5);
    expect(toInt(12n)).toBe(12);
    expect(toInt("7")).toBe(7);
  });
});
