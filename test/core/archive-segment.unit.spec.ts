import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeSegment, encodeSegment, inspectSegment, sha256Hex, type ArchiveEntry } from "../../core/archive/segment.js";
import { decodeLogSegment, encodeLogSegment, logSegmentKey } from "../../core/archive/log-segment.js";
import { ArchiveIntegrityError, decodeKeySegment, encodeKeySegment, parseManifest, parseSegmentKey, segmentKey } from "../../core/archive/manifest.js";
import { cutoffOffset, nextOffset, planSegments } from "../../core/archive/plan.js";
import { GENESIS_HASH, chainHash } from "../../core/chain.js";
import { encodeEvent } from "../../core/codec.js";
import { compareOffsets } from "../../core/envelope.js";
import { checkBlobKey } from "../../core/blob/blob-store.js";

const ref = { kind: "conversation" as const, id: "c-1" };

/** A chained run of stored entries, as the event store writes them. */
function chain(n: number, startMs = 1_700_000_000_000, startVersion = 1, prevHash = GENESIS_HASH): ArchiveEntry[] {
  let prev = prevHash;
  return Array.from({ length: n }, (_, i) => {
    const bytes = encodeEvent({ s: 1, type: "assistant.delta", version: startVersion + i, at: new Date(startMs + i).toISOString(), data: { messageId: "m", index: i, text: `tok${i} ` } });
    prev = chainHash(prev, bytes);
    return { offset: `${startMs + i}-0`, bytes, hash: prev };
  });
}

describe("archive segment", () => {
  it("round-trips entries byte for byte, with anchors in the manifest", async () => {
    const entries = chain(200);
    const seg = await encodeSegment(ref, entries, { prevHash: GENESIS_HASH, firstVersion: 1 });
    expect(seg.manifest).toMatchObject({ firstVersion: 1, lastVersion: 200, count: 200, prevHash: GENESIS_HASH, lastHash: entries[199]?.hash });
    expect(seg.manifest.sha256).toBe(sha256Hex(seg.bytes));
    expect(seg.bytes.length).toBeLessThan(seg.manifest.rawSize);
    const back = await decodeSegment(seg.bytes, seg.manifest);
    expect(back.map((e) => [e.offset, Buffer.from(e.bytes).toString("hex"), e.hash, e.version])).toEqual(
      entries.map((e, i) => [e.offset, Buffer.from(e.bytes).toString("hex"), e.hash, i + 1]),
    );
    // The manifest survives the index's JSON round trip.
    expect(parseManifest(JSON.stringify(seg.manifest))).toEqual(seg.manifest);
  });

  it("continues a chain from a previous segment's anchor", async () => {
    const all = chain(10);
    const tail = all.slice(4);
    const seg = await encodeSegment(ref, tail, { prevHash: all[3]?.hash ?? "", firstVersion: 5 });
    expect(seg.manifest.key).toBe(segmentKey(ref, 5, 10));
    expect((await decodeSegment(seg.bytes, seg.manifest)).map((e) => e.version)).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it("reads gzip segments too", async () => {
    const seg = await encodeSegment(ref, chain(5), { prevHash: GENESIS_HASH, firstVersion: 1 }, { codec: "gzip" });
    expect((await decodeSegment(seg.bytes, seg.manifest)).length).toBe(5);
  });

  it("refuses to seal a broken chain or a version gap", async () => {
    const entries = chain(5);
    const broken = entries.map((e, i) => (i === 2 ? { ...e, hash: "f".repeat(64) } : e));
    await expect(encodeSegment(ref, broken, { prevHash: GENESIS_HASH, firstVersion: 1 })).rejects.toBeInstanceOf(ArchiveIntegrityError);
    await expect(encodeSegment(ref, entries, { prevHash: GENESIS_HASH, firstVersion: 2 })).rejects.toBeInstanceOf(ArchiveIntegrityError);
    await expect(encodeSegment(ref, entries.slice(1), { prevHash: GENESIS_HASH, firstVersion: 2 })).rejects.toThrow(/hash chain breaks/);
  });

  it("detects any flipped byte by its checksum", async () => {
    const seg = await encodeSegment(ref, chain(50), { prevHash: GENESIS_HASH, firstVersion: 1 });
    await fc.assert(
      fc.asyncProperty(fc.nat(seg.bytes.length - 1), fc.integer({ min: 1, max: 255 }), async (at, mask) => {
        const bad = Buffer.from(seg.bytes);
        bad[at] = (bad[at] as number) ^ mask;
        await expect(decodeSegment(bad, seg.manifest)).rejects.toThrow(/checksum mismatch/);
      }),
      { numRuns: 50 },
    );
  });

  it("detects a rewritten segment whose checksum was recomputed, by its anchors", async () => {
    const entries = chain(20);
    const seg = await encodeSegment(ref, entries, { prevHash: GENESIS_HASH, firstVersion: 1 });
    // A forger rewrites event 7 and recomputes the whole chain and the checksum of the segment.
    const forged = chain(20).map((e) => ({ ...e }));
    let prev = GENESIS_HASH;
    const rewritten = forged.map((e, i) => {
      const bytes = i === 6 ? encodeEvent({ s: 1, type: "assistant.delta", version: 7, at: "2020-01-01T00:00:00.000Z", data: { text: "forged" } }) : e.bytes;
      prev = chainHash(prev, bytes);
      return { offset: e.offset, bytes, hash: prev };
    });
    const forgedSeg = await encodeSegment(ref, rewritten, { prevHash: GENESIS_HASH, firstVersion: 1 });
    // The index still holds the honest manifest: checksum differs…
    await expect(decodeSegment(forgedSeg.bytes, seg.manifest)).rejects.toBeInstanceOf(ArchiveIntegrityError);
    // …and even with the forger's checksum copied into the index, the last-hash anchor differs.
    await expect(decodeSegment(forgedSeg.bytes, { ...seg.manifest, sha256: forgedSeg.manifest.sha256, size: forgedSeg.manifest.size })).rejects.toThrow(
      /last hash differs|hash chain breaks/,
    );
  });

  it("rejects a segment of another stream", async () => {
    const seg = await encodeSegment(ref, chain(3), { prevHash: GENESIS_HASH, firstVersion: 1 });
    await expect(decodeSegment(seg.bytes, { ...seg.manifest, id: "other" })).rejects.toThrow(/belongs to/);
  });
});

describe("segment keys", () => {
  it("are valid blob keys whatever the id, and distinct ids give distinct keys", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40, unit: "binary" }), fc.string({ minLength: 1, maxLength: 40, unit: "binary" }), (a, b) => {
        const ka = segmentKey({ kind: "conversation", id: a }, 1, 2);
        checkBlobKey(ka);
        if (a !== b) expect(ka).not.toBe(segmentKey({ kind: "conversation", id: b }, 1, 2));
      }),
    );
    expect(encodeKeySegment("..")).toBe("%2E%2E");
  });

  it("sort in version order", () => {
    const keys = [1, 9, 10, 1000, 20].map((v) => segmentKey(ref, v, v + 1));
    expect([...keys].sort()).toEqual([1, 9, 10, 20, 1000].map((v) => segmentKey(ref, v, v + 1)));
  });
});

describe("retention plan", () => {
  const entryArb = fc
    .array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 300 })), { minLength: 0, maxLength: 200 })
    .map((steps) => {
      let ms = 1_000_000;
      return steps.map(([dt, size], i) => {
        ms += dt;
        return { offset: `${ms}-${i}`, bytes: new Uint8Array(size) };
      });
    });

  it("archives exactly the old prefix, in order, within the segment caps", () => {
    fc.assert(
      fc.property(entryArb, fc.integer({ min: 999_990, max: 1_001_100 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 3000 }), (entries, now, maxEvents, maxBytes) => {
        const retentionMs = 10;
        const segs = planSegments(entries, { nowMs: now, retentionMs, maxEvents, maxBytes });
        const flat = segs.flat();
        const cutoff = cutoffOffset(now, retentionMs);
        const expected = entries.filter((e) => compareOffsets(e.offset, cutoff) < 0);
        expect(flat).toEqual(expected);
        for (const s of segs) {
          expect(s.length).toBeGreaterThan(0);
          expect(s.length).toBeLessThanOrEqual(maxEvents);
          const bytes = s.reduce((n, e) => n + e.bytes.byteLength, 0);
          if (s.length > 1) expect(bytes).toBeLessThanOrEqual(maxBytes);
        }
      }),
    );
  });

  it("nextOffset is the successor id", () => {
    expect(nextOffset("5-0")).toBe("5-1");
    expect(nextOffset("1732212345678-41")).toBe("1732212345678-42");
    expect(compareOffsets(nextOffset("7-18446744073709551614"), "7-18446744073709551614")).toBe(1);
  });
});

describe("segment key parsing", () => {
  it("inverts segmentKey for any id", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40, unit: "binary" }), fc.integer({ min: 1, max: 1e9 }), fc.nat(1000), (id, first, len) => {
        const key = segmentKey({ kind: "conversation", id }, first, first + len);
        expect(parseSegmentKey(key)).toEqual({ ref: { kind: "conversation", id }, firstVersion: first, lastVersion: first + len });
      }),
    );
    expect(parseSegmentKey("archive/conversation/a/1-2.seg")).toBeUndefined();
    expect(decodeKeySegment("%2e")).toBeUndefined();
  });

  it("inspectSegment rebuilds the manifest from the bytes and refuses a wrong anchor", async () => {
    const entries = chain(9);
    const seg = await encodeSegment(ref, entries, { prevHash: GENESIS_HASH, firstVersion: 1 });
    const m = await inspectSegment(seg.bytes, { key: seg.manifest.key, ref, prevHash: GENESIS_HASH, firstVersion: 1, createdAt: seg.manifest.createdAt });
    expect(m).toEqual(seg.manifest);
    await expect(inspectSegment(seg.bytes, { key: seg.manifest.key, ref, prevHash: "1".repeat(64), firstVersion: 1 })).resolves.toMatchObject({ prevHash: "1".repeat(64) });
    await expect(inspectSegment(seg.bytes, { key: seg.manifest.key, ref, prevHash: GENESIS_HASH, firstVersion: 2 })).rejects.toBeInstanceOf(ArchiveIntegrityError);
    await expect(inspectSegment(seg.bytes, { key: segmentKey(ref, 1, 8), ref, prevHash: GENESIS_HASH, firstVersion: 1 })).rejects.toThrow(/not what its key says/);
  });
});

describe("log segment", () => {
  it("round-trips entries with their hashes and detects a flipped byte", async () => {
    const entries = chain(30).map((e, i) => ({ id: `${1_700_000_000_000 + i}-${i % 3}`, k: `{p1}:es:conversation:c${i % 4}`, o: e.offset, e: e.bytes, h: e.hash }));
    const seg = await encodeLogSegment(1, entries);
    expect(seg.manifest.key).toBe(logSegmentKey(1, entries[0]?.id ?? "", entries[29]?.id ?? ""));
    const back = await decodeLogSegment(seg.bytes, seg.manifest);
    expect(back.map((x) => [x.id, x.k, x.o, Buffer.from(x.e).toString("hex"), x.h])).toEqual(
      entries.map((x) => [x.id, x.k, x.o, Buffer.from(x.e).toString("hex"), x.h]),
    );
    const bad = Buffer.from(seg.bytes);
    bad[5] = (bad[5] as number) ^ 1;
    await expect(decodeLogSegment(bad, seg.manifest)).rejects.toThrow(/checksum mismatch/);
    await expect(decodeLogSegment(seg.bytes, { ...seg.manifest, count: 29 })).rejects.toThrow(/does not match/);
  });
});
