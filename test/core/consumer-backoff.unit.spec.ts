import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffMs, reclaimAfterMs } from "../../core/redis/backoff.js";

describe("consumer retry backoff", () => {
  it("doubles per delivery from the base and stops at the cap", () => {
    const o = { baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((d) => backoffMs(d, o))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it("is monotonic, never above the cap, never negative, also for huge delivery counts", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 100_000 }), (d, base, extra) => {
        const o = { baseMs: base, maxMs: base + extra };
        const a = backoffMs(d, o);
        const b = backoffMs(d + 1, o);
        expect(a).toBeGreaterThanOrEqual(0);
        expect(b).toBeGreaterThanOrEqual(a);
        expect(b).toBeLessThanOrEqual(o.maxMs);
      }),
    );
  });

  it("jitter stays within ±jitter/2 of the exact delay", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (d, jitter, r) => {
        const o = { baseMs: 50, maxMs: 10_000 };
        const exact = backoffMs(d, o);
        const j = backoffMs(d, { ...o, jitter, rand: () => r });
        expect(j).toBeGreaterThanOrEqual(Math.floor(exact * (1 - jitter / 2)) - 1);
        expect(j).toBeLessThanOrEqual(Math.ceil(exact * (1 + jitter / 2)) + 1);
      }),
    );
  });

  it("another consumer's entry waits at least the visibility timeout; our own only its backoff", () => {
    const o = { baseMs: 10, maxMs: 1000, claimIdleMs: 500 };
    expect(reclaimAfterMs(1, true, o)).toBe(10);
    expect(reclaimAfterMs(1, false, o)).toBe(500);
    expect(reclaimAfterMs(10, false, o)).toBe(1000);
  });
});
