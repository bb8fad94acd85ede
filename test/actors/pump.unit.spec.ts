import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Pump } from "../../actors/runtime/pump.js";

/** A source producing `bursts`: the items of one burst at once, a timer tick between bursts. */
async function* bursts<T>(groups: T[][], failAfter?: unknown): AsyncGenerator<T> {
  for (const g of groups) {
    await new Promise((r) => setTimeout(r, 1));
    yield* g;
  }
  if (failAfter !== undefined) throw failAfter;
}

async function drain<T>(pump: Pump<T>): Promise<{ takes: T[][]; error?: unknown }> {
  const takes: T[][] = [];
  for (;;) {
    const t = await pump.take();
    if (t.items.length > 0) takes.push(t.items);
    if (t.ended) return { takes, ...(t.error ? { error: t.error.cause } : {}) };
  }
}

describe("Pump (read-ahead of a reply's pieces)", () => {
  it("hands over every item once, in order, and never an empty take before the end", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.integer(), { minLength: 1, maxLength: 5 }), { maxLength: 8 }), async (groups) => {
        const pump = new Pump(bursts(groups));
        const takes: number[][] = [];
        for (;;) {
          const t = await pump.take();
          if (!t.ended) expect(t.items.length).toBeGreaterThan(0);
          takes.push(t.items);
          if (t.ended) break;
        }
        expect(takes.flat()).toEqual(groups.flat());
        await pump.finished;
      }),
      { numRuns: 40 },
    );
  });

  it("takes what a source produces at once together (a reply's last piece and its end)", async () => {
    const { takes } = await drain(new Pump(bursts([["delta", "done"]])));
    expect(takes).toEqual([["delta", "done"]]);
    const more = await drain(new Pump(bursts([["a", "b", "c"], ["d", "e", "done"]])));
    expect(more.takes).toEqual([["a", "b", "c"], ["d", "e", "done"]]);
  });

  it("collects what arrives while the consumer is busy into its next take", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* source() {
      yield "a";
      await gate; // produced while the consumer is "appending" a
      yield "b";
      yield "c";
      await new Promise((r) => setImmediate(r));
      yield "d";
    }
    const pump = new Pump(source());
    expect((await pump.take()).items).toEqual(["a"]);
    release();
    await pump.finished; // the consumer was busy the whole time
    const t = await pump.take();
    expect(t.items).toEqual(["b", "c", "d"]);
    expect(t.ended).toBe(true);
  });

  it("delivers the items produced before a failure, then the failure", async () => {
    const boom = new Error("boom");
    const { takes, error } = await drain(new Pump(bursts([["a", "b"], ["c"]], boom)));
    expect(takes.flat()).toEqual(["a", "b", "c"]);
    expect(error).toBe(boom);
  });
});
