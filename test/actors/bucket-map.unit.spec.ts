import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bmDelete, bmEmpty, bmEntries, bmGet, bmHas, bmSet, bmSize, type BucketMap } from "../../actors/bucket-map.js";

describe("BucketMap", () => {
  it("behaves like a Map under any sequence of sets and deletes, never mutating an older version", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), key: fc.string({ maxLength: 4 }), value: fc.integer() }),
      fc.record({ kind: fc.constant("del" as const), key: fc.string({ maxLength: 4 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        let m: BucketMap<number> = bmEmpty();
        const model = new Map<string, number>();
        for (const o of ops) {
          const before = JSON.stringify(m);
          const prev = m;
          m = o.kind === "set" ? bmSet(m, o.key, o.value) : bmDelete(m, o.key);
          expect(JSON.stringify(prev)).toBe(before);
          if (o.kind === "set") model.set(o.key, o.value);
          else model.delete(o.key);
        }
        expect(bmSize(m)).toBe(model.size);
        expect(new Map(bmEntries(m))).toEqual(model);
        for (const [k, v] of model) {
          expect(bmGet(m, k)).toBe(v);
          expect(bmHas(m, k)).toBe(true);
        }
        expect(bmGet(m, "__proto__")).toBe(model.get("__proto__"));
        expect(JSON.parse(JSON.stringify(m))).toEqual(m);
      }),
      { numRuns: 200 },
    );
  });
});

describe("BucketMap with hostile keys", () => {
  it("stores __proto__, constructor and toString as plain keys, through JSON too", () => {
    let m: BucketMap<number> = bmEmpty();
    for (const [i, k] of ["__proto__", "constructor", "toString", "hasOwnProperty"].entries()) m = bmSet(m, k, i);
    const back = JSON.parse(JSON.stringify(m)) as BucketMap<number>;
    for (const mm of [m, back]) {
      expect(bmGet(mm, "__proto__")).toBe(0);
      expect(bmGet(mm, "constructor")).toBe(1);
      expect(bmGet(mm, "toString")).toBe(2);
      expect(bmHas(mm, "valueOf")).toBe(false);
      expect(bmSize(mm)).toBe(4);
    }
    expect(bmSize(bmDelete(m, "__proto__"))).toBe(3);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
