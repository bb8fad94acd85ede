import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../core/redis/group-commit.js";

/**
 * The group-commit scheduler (core/redis/group-commit.ts) without Redis: which requests share a
 * call, the caps, and that outcomes reach exactly their own request.
 */
interface Call {
  group: string;
  items: number[];
  /** Settle this call: each item's outcome is item * 10, or an Error for the listed items. */
  finish: (failing?: number[]) => void;
  fail: (e: Error) => void;
}

function harness(opts: { maxItems?: number; maxWeight?: number; weight?: (n: number) => number; maxInFlight?: number; minSplit?: number } = {}) {
  const calls: Call[] = [];
  const gc = new GroupCommit<string, number, number>({
    ...opts,
    flush: (group, items) =>
      new Promise((resolve, reject) => {
        calls.push({
          group,
          items,
          finish: (failing = []) => resolve(items.map((n) => (failing.includes(n) ? new Error(`bad ${n}`) : n * 10))),
          fail: reject,
        });
      }),
  });
  return { gc, calls };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("GroupCommit", () => {
  it("a lone request goes out in the same tick, alone", async () => {
    const { gc, calls } = harness();
    const p = gc.submit("p0", 1);
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    calls[0]?.finish();
    expect(await p).toBe(10);
  });

  it("requests of one group in the same tick share a call; other groups get their own", async () => {
    const { gc, calls } = harness();
    const ps = [gc.submit("a", 1), gc.submit("b", 2), gc.submit("a", 3), gc.submit("a", 4)];
    await tick();
    expect(calls.map((c) => [c.group, c.items])).toEqual([
      ["a", [1, 3, 4]],
      ["b", [2]],
    ]);
    for (const c of calls) c.finish();
    expect(await Promise.all(ps)).toEqual([10, 20, 30, 40]);
    expect(gc.stats).toEqual({ calls: 2, items: 4, largest: 3 });
  });

  it("requests arriving while a call is in flight wait for it, then go out together", async () => {
    const { gc, calls } = harness();
    const first = gc.submit("a", 1);
    await tick();
    const later = [gc.submit("a", 2), gc.submit("a", 3)];
    await tick();
    await tick();
    expect(calls).toHaveLength(1); // nothing sent while the first call is in flight
    calls[0]?.finish();
    expect(await first).toBe(10);
    await tick();
    expect(calls[1]?.items).toEqual([2, 3]);
    calls[1]?.finish();
    expect(await Promise.all(later)).toEqual([20, 30]);
  });

  it("callers answered by a reply that submit again at once join one call", async () => {
    const { gc, calls } = harness();
    // Three writers, each appending again as soon as its previous append is answered.
    const writers = [0, 1, 2].map(async (w) => {
      const a = await gc.submit("a", w);
      return gc.submit("a", a + 1);
    });
    await tick();
    expect(calls[0]?.items).toEqual([0, 1, 2]);
    calls[0]?.finish();
    await tick();
    expect(calls[1]?.items).toEqual([1, 11, 21]);
    calls[1]?.finish();
    expect(await Promise.all(writers)).toEqual([10, 110, 210]);
  });

  it("caps a call at maxItems and maxWeight; a full call goes out even while another is in flight", async () => {
    const { gc, calls } = harness({ maxItems: 3, maxWeight: 100, weight: (n) => n });
    const ps = [1, 2, 3, 4, 5, 6, 7].map((n) => gc.submit("a", n));
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3], [4, 5, 6]]);
    const heavy = [gc.submit("b", 60), gc.submit("b", 30), gc.submit("b", 20), gc.submit("b", 150)];
    // 60 + 30 fit; with 20 the queue is over 100, so [60, 30] is full and goes; 20 + 150 would pass
    // 100 too, so [20] cannot grow and goes as well; 150 is over the cap on its own and waits for a turn.
    expect(calls.filter((c) => c.group === "b").map((c) => c.items)).toEqual([[60, 30], [20]]);
    for (let i = 0; i < 4; i++) {
      for (const c of calls) c.finish();
      await tick();
    }
    expect(calls.filter((c) => c.group === "b").map((c) => c.items)).toEqual([[60, 30], [20], [150]]);
    expect(calls.filter((c) => c.group === "a").map((c) => c.items)).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(await Promise.all([...ps, ...heavy])).toEqual([10, 20, 30, 40, 50, 60, 70, 600, 300, 200, 1500]);
  });

  it("maxInFlight 2: a queue with two free slots is split into two equal calls of at least minSplit", async () => {
    const { gc, calls } = harness({ maxInFlight: 2, minSplit: 4 });
    const ps = Array.from({ length: 10 }, (_, n) => gc.submit("a", n));
    await tick();
    expect(calls.map((c) => c.items)).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6, 7, 8, 9],
    ]);
    // Too few to split (7 < 2 × 4): one call, and the second slot stays free for what comes next.
    const small = Array.from({ length: 7 }, (_, n) => gc.submit("b", n));
    await tick();
    expect(calls.filter((c) => c.group === "b").map((c) => c.items)).toEqual([[0, 1, 2, 3, 4, 5, 6]]);
    const next = gc.submit("b", 7);
    await tick();
    expect(calls.filter((c) => c.group === "b").map((c) => c.items)).toEqual([[0, 1, 2, 3, 4, 5, 6], [7]]);
    // Both slots taken: a third request waits for a call to return.
    const third = gc.submit("b", 8);
    await tick();
    expect(calls.filter((c) => c.group === "b")).toHaveLength(2);
    calls.find((c) => c.group === "b")?.finish();
    await tick();
    expect(calls.filter((c) => c.group === "b").map((c) => c.items).at(-1)).toEqual([8]);
    for (const c of calls) c.finish();
    expect(await Promise.all([...ps, ...small, next, third])).toEqual([...Array.from({ length: 10 }, (_, n) => n * 10), ...Array.from({ length: 7 }, (_, n) => n * 10), 70, 80]);
  });

  it("maxInFlight 2: writers that append again at once settle into two alternating cohorts", async () => {
    const { gc, calls } = harness({ maxInFlight: 2, minSplit: 2 });
    let rounds = 0;
    const writers = [0, 1, 2, 3].map(async (w) => {
      let v = w;
      for (let r = 0; r < 3; r++) v = (await gc.submit("a", v)) / 10;
      return v;
    });
    await tick();
    expect(calls.map((c) => c.items)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    // Answer calls oldest first, one at a time: each answered cohort goes out again while the other is in flight.
    for (let i = 0; i < 6; i++) {
      calls[i]?.finish();
      await tick();
      rounds++;
    }
    expect(calls.map((c) => c.items.length)).toEqual([2, 2, 2, 2, 2, 2]);
    expect(await Promise.all(writers)).toEqual([0, 1, 2, 3]);
    expect(rounds).toBe(6);
  });

  it("one request's Error rejects only that request; a failed call rejects only its own requests", async () => {
    const { gc, calls } = harness();
    const ps = [1, 2, 3].map((n) => gc.submit("a", n).catch((e: Error) => e.message));
    const other = gc.submit("b", 9);
    await tick();
    calls[0]?.finish([2]);
    calls[1]?.fail(new Error("connection lost"));
    expect(await Promise.all(ps)).toEqual([10, "bad 2", 30]);
    await expect(other).rejects.toThrow("connection lost");
    // The group still works afterwards.
    const again = gc.submit("b", 4);
    await tick();
    calls[2]?.finish();
    expect(await again).toBe(40);
  });

  it("property: every request gets exactly its own outcome, in submission order per call, within the caps", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ group: fc.constantFrom("a", "b", "c"), weight: fc.integer({ min: 1, max: 50 }), waitTicks: fc.nat({ max: 2 }) }), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        async (reqs, maxItems, maxInFlight, minSplit) => {
          const { gc, calls } = harness({ maxItems, maxWeight: 120, weight: (n) => reqs[n]?.weight ?? 1, maxInFlight, minSplit });
          const ps: Array<Promise<number>> = [];
          for (const [i, r] of reqs.entries()) {
            ps.push(gc.submit(r.group, i));
            for (let t = 0; t < r.waitTicks; t++) await tick();
            // Answer whatever is in flight now and then, so queues build up and drain.
            if (i % 5 === 4) for (const c of calls) c.finish();
          }
          for (let guard = 0; guard < 200 && calls.reduce((n, c) => n + c.items.length, 0) < reqs.length; guard++) {
            for (const c of calls) c.finish();
            await tick();
          }
          for (const c of calls) c.finish();
          expect(await Promise.all(ps)).toEqual(reqs.map((_, i) => i * 10));
          const sent = calls.flatMap((c) => c.items);
          expect([...sent].sort((x, y) => x - y)).toEqual(reqs.map((_, i) => i));
          for (const c of calls) {
            expect(c.items.length).toBeLessThanOrEqual(maxItems);
            expect(c.items.every((i) => reqs[i]?.group === c.group)).toBe(true);
            const w = c.items.reduce((n, i) => n + (reqs[i]?.weight ?? 0), 0);
            if (c.items.length > 1) expect(w).toBeLessThanOrEqual(120);
          }
          // Per group, calls carry requests in submission order.
          for (const g of ["a", "b", "c"]) {
            const order = calls.filter((c) => c.group === g).flatMap((c) => c.items);
            expect(order).toEqual([...order].sort((x, y) => x - y));
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
