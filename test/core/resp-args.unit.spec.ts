import fc from "fast-check";
import { Command } from "ioredis";
import { describe, expect, it } from "vitest";
import { encodeGroupCall, groupCall, groupFrameParts, type GroupAppend } from "../../core/redis/append-group.js";
import { RespArgs } from "../../core/redis/resp-args.js";

/**
 * The group call's pre-encoded frame (core/redis/resp-args.ts, `encodeGroupCall`) must be exactly
 * the bytes ioredis writes for `evalsha(sha, keys.length, ...keys, ...args)` with the same key
 * prefix — ioredis's own Command and toWritable are the reference.
 */
const SHA = "0123456789abcdef0123456789abcdef01234567";
const HEAD = Buffer.concat([RespArgs.bulk("evalsha"), RespArgs.bulk(SHA)]);

function ioredisBytes(keys: string[], args: Array<string | number | Buffer>, keyPrefix: string): Buffer {
  const cmd = new Command("evalsha", [SHA, keys.length, ...keys, ...args], keyPrefix ? { keyPrefix } : {});
  const w = cmd.toWritable({} as never);
  return typeof w === "string" ? Buffer.from(w, "utf8") : w;
}

const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 12 }));

const appendOf = (partitions: number) =>
  fc.record({
    partition: fc.nat({ max: partitions - 1 }),
    stream: text,
    meta: text,
    idem: text,
    expectedVersion: fc.oneof(fc.nat({ max: 12 }), fc.maxSafeNat()),
    prevHash: text,
    // An append's own dedupe TTL (AppendOptions.dedupeTtlMs), absent for most.
    idemTtlMs: fc.oneof(fc.constant(0), fc.nat({ max: 10 ** 9 }), fc.double({ min: 0, max: 1e7, noNaN: true })),
    events: fc.array(fc.record({ bytes: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)), hash: text }), { minLength: 1, maxLength: 4 }),
  }, { requiredKeys: ["partition", "stream", "meta", "idem", "expectedVersion", "prevHash", "events"] }) satisfies fc.Arbitrary<GroupAppend>;

describe("RespArgs / encodeGroupCall", () => {
  it("encodes a group call byte for byte as ioredis does (any appends, partitions, key prefix, texts)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }).chain((p) =>
          fc.record({
            partitions: fc.constant(p),
            ttl: fc.oneof(fc.constant(0), fc.nat({ max: 10 ** 9 }), fc.double({ min: 0, max: 1e7, noNaN: true })),
            prefix: fc.oneof(fc.constant(""), text),
            appends: fc.array(appendOf(p), { minLength: 1, maxLength: 12 }),
          }),
        ),
        ({ partitions, ttl, prefix, appends }) => {
          const shared = {
            idemTtlMs: ttl,
            partitions,
            logs: Array.from({ length: partitions }, (_, i) => `{p${i}}:log`),
            idseqs: Array.from({ length: partitions }, (_, i) => `{p${i}}:idseq`),
          };
          const parts = groupFrameParts(shared, prefix);
          const { keys, args } = groupCall(shared, appends);
          const mine = encodeGroupCall(parts, appends).frame(HEAD, 2);
          expect(mine.equals(ioredisBytes(keys, args, prefix))).toBe(true);
          // The partition scratch is left clean: the same call encodes the same again.
          expect(encodeGroupCall(parts, appends).frame(HEAD, 2).equals(mine)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("integers, empty values, a head too big for the room in front (EVAL's source), and growing past the size hint", () => {
    const a = new RespArgs(1, 8);
    a.int(0).int(7).int(10).int(Number.MAX_SAFE_INTEGER).int(-3).int(1.5).string("").bytes(Buffer.alloc(0)).string("é", Buffer.from("p:"));
    for (let i = 0; i < 100; i++) a.bytes(Buffer.alloc(50, i));
    const plain: Array<string | number | Buffer> = [0, 7, 10, Number.MAX_SAFE_INTEGER, -3, 1.5, "", Buffer.alloc(0), "p:é"];
    for (let i = 0; i < 100; i++) plain.push(Buffer.alloc(50, i));
    const expected = new Command("eval", ["x".repeat(500), ...plain]).toWritable({} as never);
    const head = Buffer.concat([RespArgs.bulk("eval"), RespArgs.bulk("x".repeat(500))]);
    expect(a.frame(head, 2).equals(expected as Buffer)).toBe(true);
    // The arguments stay intact for a second frame with another head.
    const again = new Command("evalsha", [SHA, ...plain]).toWritable({} as never);
    expect(a.frame(HEAD, 2).equals(again as Buffer)).toBe(true);
  });
});
