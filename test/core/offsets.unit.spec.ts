import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareOffsets, compareOffsetsBig, offsetMillis } from "../../core/envelope.js";

/**
 * compareOffsets takes fast paths (text order for ids of the same shape, else digit by digit; no
 * BigInt, no allocation) for plain ids; it must
 * agree with the BigInt reference on every input, including seq parts beyond 2^53 (Redis allows up
 * to 2^64-1), leading zeros, empty parts and ids without a "-".
 */
const digits = (max: number) => fc.stringMatching(new RegExp(`^[0-9]{0,${max}}$`));
const huge = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String);
const part = fc.oneof(digits(25), huge, fc.constantFrom("0", "00", "", "9007199254740993", "18446744073709551615"));
const offset = fc.oneof(
  fc.tuple(part, part).map(([m, s]) => `${m}-${s}`),
  part,
  fc.constantFrom("0", "0-0", "-", "1-", "-1"),
);

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);
const reference = (a: string, b: string): number | "throws" => {
  try {
    return compareOffsetsBig(a, b);
  } catch {
    return "throws";
  }
};
const fast = (a: string, b: string): number | "throws" => {
  try {
    return compareOffsets(a, b);
  } catch {
    return "throws";
  }
};

describe("compareOffsets", () => {
  it("agrees with the BigInt comparison on every valid offset", () => {
    fc.assert(
      fc.property(offset, offset, (a, b) => {
        expect(compareOffsets(a, b)).toBe(compareOffsetsBig(a, b));
      }),
      { numRuns: 20_000 },
    );
  });

  it("agrees on near neighbours (same ms, seq ±1, around 2^53 and 2^64)", () => {
    const around = fc.constantFrom(0n, 1n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, (1n << 64n) - 2n, (1n << 64n) - 1n);
    fc.assert(
      fc.property(around, around, fc.integer({ min: -2, max: 2 }), fc.integer({ min: -2, max: 2 }), (x, y, dx, dy) => {
        const a = `1732212345678-${x + BigInt(dx) < 0n ? 0n : x + BigInt(dx)}`;
        const b = `1732212345678-${y + BigInt(dy) < 0n ? 0n : y + BigInt(dy)}`;
        expect(compareOffsets(a, b)).toBe(compareOffsetsBig(a, b));
      }),
    );
  });

  it("is a total order: antisymmetric and consistent with equality of the numbers", () => {
    fc.assert(
      fc.property(offset, offset, (a, b) => {
        expect(sign(compareOffsets(a, b))).toBe(0 - sign(compareOffsets(b, a)) || 0);
        if (compareOffsets(a, b) === 0) expect(compareOffsetsBig(a, b)).toBe(0);
      }),
    );
  });

  it("still refuses (as the BigInt parse does) input that is not an id, unless both have the same shape", () => {
    const junk = fc.string().filter((s) => !/^[0-9]*(-[0-9]*)?$/.test(s));
    fc.assert(
      fc.property(junk, fc.oneof(fc.string(), offset), (a, b) => {
        fc.pre(!(a.length === b.length && a.indexOf("-") === b.indexOf("-")));
        expect(fast(a, b)).toBe(reference(a, b));
        expect(fast(b, a)).toBe(reference(b, a));
      }),
      { numRuns: 5_000 },
    );
  });
});

describe("offsetMillis", () => {
  it("is the millisecond part of any stream id, and 0 without one", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 }), fc.nat(), (ms, seq) => {
        expect(offsetMillis(`${ms}-${seq}`)).toBe(ms);
      }),
    );
    expect(offsetMillis("")).toBe(0);
    expect(offsetMillis("-3")).toBe(0);
  });
});
