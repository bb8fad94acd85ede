import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GENESIS_HASH, chainHash } from "../../core/chain.js";

/** The reference definition: sha256(bytes of the previous hash as hex ‖ the stored record). */
const reference = (prev: string, bytes: Uint8Array): string => createHash("sha256").update(Buffer.from(prev, "hex")).update(bytes).digest("hex");

describe("chainHash (core/chain.ts)", () => {
  it("equals sha256(prev ‖ bytes) for any previous hash text and record, small or larger than the scratch buffer", () => {
    const prevArb = fc.oneof(
      fc.constant(GENESIS_HASH),
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex")),
      // Not a valid chain value (audit of a damaged entry): decoded the same way as Buffer.from(…, "hex").
      fc.string({ maxLength: 70 }),
    );
    const bytesArb = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 8100, maxLength: 9000 }));
    fc.assert(
      fc.property(prevArb, bytesArb, (prev, bytes) => {
        expect(chainHash(prev, bytes)).toBe(reference(prev, bytes));
      }),
      { numRuns: 300 },
    );
  });

  it("chains: each call starts from the previous one's digest", () => {
    const a = Buffer.from("first");
    const b = Buffer.from("second");
    const h1 = chainHash(GENESIS_HASH, a);
    expect(chainHash(h1, b)).toBe(reference(reference(GENESIS_HASH, a), b));
  });
});
