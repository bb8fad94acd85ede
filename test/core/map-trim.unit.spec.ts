import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { trimOldest, trimSlack } from "../../core/map-trim.js";

describe("trimOldest", () => {
  it("keeps every pinned key and the newest others, in order, down to the bound", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { maxLength: 80 }), fc.nat(90), fc.func(fc.boolean()), (keys, keep, pin) => {
        const map = new Map(keys.map((k) => [k, `v${k}`] as const));
        const pinned = (k: number) => pin(k);
        const deleted = trimOldest(map, keep, pinned);
        const unpinned = keys.filter((k) => !pinned(k));
        const excess = Math.max(0, keys.length - keep);
        const gone = new Set(unpinned.slice(0, Math.min(excess, unpinned.length)));
        expect(deleted).toBe(gone.size);
        expect([...map.keys()]).toEqual(keys.filter((k) => !gone.has(k)));
        for (const [k, v] of map) expect(v).toBe(`v${k}`);
      }),
    );
  });

  it("deletes nothing from a map within its bound", () => {
    const map = new Map([["a", 1], ["b", 2]]);
    expect(trimOldest(map, 2)).toBe(0);
    expect([...map.keys()]).toEqual(["a", "b"]);
  });

  it("lets a cache grow 1/16 past its bound, at least one entry", () => {
    expect(trimSlack(10_000)).toBe(625);
    expect(trimSlack(1)).toBe(1);
    expect(trimSlack(0)).toBe(1);
  });
});
