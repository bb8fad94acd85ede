import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fnv1a32 } from "../../core/partition.js";
import { fingerprint } from "../../actors/fingerprint-set.js";

/**
 * Fingerprints are stored in snapshots (a conversation's `seen`), so their values are a format: a
 * faster way to compute them must give the same numbers, or a conversation rehydrated from an old
 * snapshot would forget every id it keeps only as a fingerprint.
 */
function mix32(key: string): number {
  let h = 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    h = Math.imul(h ^ key.charCodeAt(i), 0xcc9e2d51);
    h = (h << 15) | (h >>> 17);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
const reference = (key: string): number => fnv1a32(key) * 2 ** 21 + (mix32(key) & 0x1fffff);

describe("fingerprint", () => {
  it("is FNV-1a's 32 bits over 21 bits of the Murmur-mixed hash, for any key", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), (k) => fingerprint(k) === reference(k)), { numRuns: 2000 });
  });

  it("keeps the values snapshots written before hold", () => {
    // Printed by the two-pass implementation of commit 50d5e37.
    expect(fingerprint("")).toBe(4542716992278246);
    expect(fingerprint("c:m1")).toBe(4339481600302129);
    expect(fingerprint("i:0b6f3c2a-5d1e-4f7a-9c3b-2e8d1a4f6b90")).toBe(6771315674211653);
    expect(fingerprint("c:héllo✓")).toBe(6521498067007439);
    expect(fingerprint("i:" + "x".repeat(300))).toBe(533238363798762);
  });
});
