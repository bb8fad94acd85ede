import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TickBatch } from "../../actors/runtime/tick-batch.js";

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

describe("TickBatch (one call per key per tick)", () => {
  it("sends every item exactly once, in order per key, at most maxItems per call, one call per key and tick", async () => {
    await fc.assert(
      fc.asyncProperty(
        // Ticks of adds: each tick is a list of keys (0..2) added in it.
        fc.array(fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 12 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 5 }),
        async (ticks, maxItems) => {
          const calls: Array<{ key: number; items: number[]; tick: number }> = [];
          let tick = 0;
          const batch = new TickBatch<number, number>(async (key, items) => {
            calls.push({ key, items: [...items], tick });
          }, maxItems);
          let n = 0;
          const added: Array<{ key: number; item: number; tick: number }> = [];
          const waits: Array<Promise<void>> = [];
          for (const keys of ticks) {
            for (const key of keys) {
              const item = n++;
              added.push({ key, item, tick });
              waits.push(batch.add(key, item));
            }
            await nextTurn();
            tick++;
          }
          await Promise.all(waits);
          for (const key of [0, 1, 2]) {
            const sent = calls.filter((c) => c.key === key).flatMap((c) => c.items);
            expect(sent).toEqual(added.filter((a) => a.key === key).map((a) => a.item));
          }
          for (const c of calls) expect(c.items.length).toBeLessThanOrEqual(maxItems);
          // Items of different ticks never share a call; a tick's items of one key take ⌈k/maxItems⌉ calls.
          for (let t = 0; t < ticks.length; t++) {
            for (const key of [0, 1, 2]) {
              const k = added.filter((a) => a.key === key && a.tick === t).length;
              expect(calls.filter((c) => c.key === key && c.tick === t).length).toBe(Math.ceil(k / maxItems));
            }
          }
        },
      ),
    );
  });

  it("resolves a caller only after its call is acknowledged, and rejects every caller of a failed call", async () => {
    let release: () => void = () => undefined;
    const batch = new TickBatch<string, number>((key) =>
      key === "bad" ? Promise.reject(new Error("down")) : new Promise<void>((r) => (release = r)),
    );
    let acked = false;
    const a = batch.add("ok", 1).then(() => (acked = true));
    const bad = [batch.add("bad", 1), batch.add("bad", 2)].map((p) => p.then(() => "resolved", (e: Error) => e.message));
    await nextTurn();
    expect(acked).toBe(false);
    release();
    await a;
    expect(acked).toBe(true);
    expect(await Promise.all(bad)).toEqual(["down", "down"]);
  });
});
