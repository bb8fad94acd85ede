import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TributaryError, VersionConflictError } from "../../core/errors.js";
import { groupCall, parseGroupReplies, parseGroupReply, type GroupAppend } from "../../core/redis/append-group.js";
import { StaleHeadError } from "../../core/redis/scripts.js";

/** The group script's arguments and return codes (core/redis/append-group.ts), without Redis. */
const A = (over: Partial<GroupAppend> = {}): GroupAppend => ({
  partition: 1,
  stream: "{p1}:es:conversation:a",
  meta: "{p1}:meta:conversation:a",
  idem: "{p1}:idem:conversation:a:c1",
  expectedVersion: 4,
  prevHash: "aa",
  events: [
    { bytes: Buffer.from([1]), hash: "h5" },
    { bytes: Buffer.from([2]), hash: "h6" },
  ],
  ...over,
});

describe("append-group.lua arguments and replies", () => {
  const shared = { idemTtlMs: 1500.7, partitions: 4, logs: [0, 1, 2, 3].map((p) => `{p${p}}:log`), idseqs: [0, 1, 2, 3].map((p) => `{p${p}}:idseq`) };

  it("lays out KEYS (log, idseq of the call's partition, then stream/meta/idem per append) and ARGV (shared, then per append)", () => {
    const b = A({ stream: "{p1}:es:session:b", meta: "{p1}:meta:session:b", idem: "{p1}:idem:session:b:x", expectedVersion: 0, prevHash: "00", events: [{ bytes: Buffer.from([3]), hash: "h1" }] });
    const { keys, args } = groupCall(shared, [A(), b]);
    expect(keys).toEqual(["{p1}:log", "{p1}:idseq", A().stream, A().meta, A().idem, b.stream, b.meta, b.idem]);
    expect(args).toEqual([1500, 4, 1, 1, 2, 1, 4, "aa", 1500, 2, Buffer.from([1]), "h5", Buffer.from([2]), "h6", 1, 0, "00", 1500, 1, Buffer.from([3]), "h1"]);
  });

  it("numbers the partitions of a mixed call 1..G in order of first appearance, each log and id sequence once", () => {
    const c = A({ partition: 3, stream: "{p3}:es:conversation:c", meta: "{p3}:meta:conversation:c", idem: "{p3}:idem:conversation:c:1", expectedVersion: 0, prevHash: "00", events: [{ bytes: Buffer.from([7]), hash: "h1" }] });
    const { keys, args } = groupCall(shared, [c, A(), c]);
    expect(keys).toEqual(["{p3}:log", "{p3}:idseq", "{p1}:log", "{p1}:idseq", c.stream, c.meta, c.idem, A().stream, A().meta, A().idem, c.stream, c.meta, c.idem]);
    expect(args.slice(0, 6)).toEqual([1500, 4, 2, 3, 1, 3]);
    // Per append: its partition's index in the call (1 = p3, 2 = p1), then as before (the TTL is the call's).
    expect(args.slice(6)).toEqual([1, 0, "00", 1500, 1, Buffer.from([7]), "h1", 2, 4, "aa", 1500, 2, Buffer.from([1]), "h5", Buffer.from([2]), "h6", 1, 0, "00", 1500, 1, Buffer.from([7]), "h1"]);
  });

  it("gives each append its own dedupe TTL: the call's unless it asks for another", () => {
    const short = A({ idemTtlMs: 300_000.9 });
    const { args } = groupCall(shared, [short, A(), A({ idemTtlMs: 0 })]);
    // [ttl, P, G, p, A], then per append g, expected, prev, TTL, N, events…
    expect(args[8]).toBe(300_000);
    expect(args[8 + 9]).toBe(1500);
    expect(args[8 + 18]).toBe(0);
  });

  it("maps 0 to an append at expected+1.. with the writer's hash, 1 to the stored first result", () => {
    expect(parseGroupReply(A(), [0, "9-1", "9-5"])).toEqual({ duplicate: false, fromVersion: 5, toVersion: 6, offsets: ["9-1", "9-5"], hash: "h6" });
    expect(parseGroupReply(A(), [1, "2", 3, Buffer.from("cd"), "7-1", "7-5"])).toEqual({ duplicate: true, fromVersion: 2, toVersion: 3, offsets: ["7-1", "7-5"], hash: "cd" });
    // An appended reply with the wrong number of offsets is a bug, not a result.
    expect(parseGroupReply(A(), [0, "9-1"])).toBeInstanceOf(TributaryError);
  });

  it("maps refusals to typed errors, per append, without throwing", () => {
    expect(parseGroupReply(A(), [-1, 7])).toBeInstanceOf(VersionConflictError);
    expect(parseGroupReply(A(), [-1, 7])).toMatchObject({ code: "CONFLICT", expected: 4, actual: 7 });
    expect(parseGroupReply(A(), [-2, 4, "beef"])).toMatchObject({ name: "StaleHeadError", actualVersion: 4, actualHash: "beef" });
    expect(parseGroupReply(A(), [-2, 4, "beef"])).toBeInstanceOf(StaleHeadError);
    expect(parseGroupReply(A(), [-3, "bad arguments"])).toMatchObject({ code: "BAD_REQUEST" });
    expect(parseGroupReply(A(), [-4, "WRONGTYPE Operation against a key holding the wrong kind of value"])).toMatchObject({ code: "INTERNAL" });
    expect(parseGroupReply(A(), [42])).toBeInstanceOf(TributaryError);
    expect(parseGroupReply(A(), "OK")).toBeInstanceOf(TributaryError);
    expect(parseGroupReply(A(), [0, "9-1", "9-5"])).not.toBeInstanceOf(Error);
  });

  it("a reply of the wrong shape fails every append of the group; otherwise outcomes are per append", () => {
    const out = parseGroupReplies([A(), A()], [[-3, "bad group arguments"]]);
    expect(out).toHaveLength(2);
    expect(out.every((o) => o instanceof TributaryError && /bad group arguments/.test(o.message))).toBe(true);
    const mixed = parseGroupReplies([A(), A()], [[-1, 5], [0, "1-1", "1-5"]]);
    expect(mixed[0]).toBeInstanceOf(VersionConflictError);
    expect(mixed[1]).toMatchObject({ fromVersion: 5, toVersion: 6 });
  });

  it("the script file carries its KEYS/ARGV/return-code header", () => {
    const lua = readFileSync(new URL("../../core/redis/scripts/append-group.lua", import.meta.url), "utf8");
    for (const word of ["KEYS[2g-1]", "KEYS[2G+3i-2]", "ARGV[4+G]", "{ 0, offset_1", "{ -1, actualVersion }", "{ -4, reason }"]) expect(lua).toContain(word);
  });
});
