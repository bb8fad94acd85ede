import fc from "fast-check";
import { Command } from "ioredis";
import { describe, expect, it } from "vitest";
import { encodeGroupCall, groupCall, groupFrameParts, type GroupAppend, type GroupShared } from "../../core/redis/append-group.js";
import { RespArgs } from "../../core/redis/resp-args.js";
import { APPEND_GROUP_SCRIPT } from "../../core/redis/append-group-call.js";
import { APPEND_LUA } from "../../core/redis/scripts.js";

/**
 * The "rewrite a duplicate's dedupe record" flag (DURABILITY=wait-replica only): the group call's
 * trailing argument when set, absent otherwise (so the layout before it is unchanged), the same
 * bytes whether encoded by `encodeGroupCall` or by ioredis from `groupCall`; and both scripts'
 * headers document it. Behaviour against Redis: test/core/duplicate-replicated.int.spec.ts.
 */
const SHA = "0123456789abcdef0123456789abcdef01234567";
const HEAD = Buffer.concat([RespArgs.bulk("evalsha"), RespArgs.bulk(SHA)]);
const ioredisBytes = (keys: string[], args: Array<string | number | Buffer>, keyPrefix: string): Buffer => {
  const w = new Command("evalsha", [SHA, keys.length, ...keys, ...args], keyPrefix ? { keyPrefix } : {}).toWritable({} as never);
  return typeof w === "string" ? Buffer.from(w, "utf8") : w;
};

const shared = (rewriteDuplicates?: boolean): GroupShared => ({
  idemTtlMs: 60_000,
  partitions: 4,
  logs: [0, 1, 2, 3].map((p) => `{p${p}}:log`),
  idseqs: [0, 1, 2, 3].map((p) => `{p${p}}:idseq`),
  ...(rewriteDuplicates === undefined ? {} : { rewriteDuplicates }),
});
const one: GroupAppend = {
  partition: 1,
  stream: "{p1}:es:conversation:a",
  meta: "{p1}:meta:conversation:a",
  idem: "{p1}:idem:conversation:a:c",
  expectedVersion: 0,
  prevHash: "00",
  events: [{ bytes: Buffer.from([1]), hash: "h1" }],
};

describe("the duplicate-rewrite flag of the append scripts", () => {
  it("groupCall ends with 1 when duplicates rewrite, and is unchanged otherwise", () => {
    const base = groupCall(shared(), [one]);
    expect(base.args).toEqual([60_000, 4, 1, 1, 1, 1, 0, "00", 60_000, 1, Buffer.from([1]), "h1"]);
    expect(groupCall(shared(false), [one])).toEqual(base);
    const flagged = groupCall(shared(true), [one]);
    expect(flagged.keys).toEqual(base.keys);
    expect(flagged.args).toEqual([...base.args, 1]);
  });

  it("encodeGroupCall writes the flag byte for byte as ioredis does", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.oneof(fc.constant(""), fc.string({ maxLength: 8 })), fc.integer({ min: 1, max: 5 }), (rewrite, prefix, count) => {
        const s = shared(rewrite);
        const appends = Array.from({ length: count }, (_, i) => ({ ...one, partition: i % 4, expectedVersion: i }));
        const { keys, args } = groupCall(s, appends);
        expect(encodeGroupCall(groupFrameParts(s, prefix), appends).frame(HEAD, 2).equals(ioredisBytes(keys, args, prefix))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it("both scripts document the flag in their ARGV headers", () => {
    expect(APPEND_LUA).toContain("ARGV[8] '1': a duplicate rewrites its dedupe record");
    expect(APPEND_LUA).toContain("ARGV[9 .. 8+2N] per event");
    expect(APPEND_GROUP_SCRIPT.source).toContain("last, only when the writer WAITs after the call (DURABILITY=wait-replica): '1'");
  });
});
