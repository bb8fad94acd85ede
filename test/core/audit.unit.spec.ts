import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { EntrySource, StoredEntry } from "../../core/audit/entry.js";
import { history } from "../../core/audit/history.js";
import { GENESIS_STATE, verifyStream } from "../../core/audit/verify.js";
import { GENESIS_HASH, chainHash } from "../../core/chain.js";
import { encodeEvent } from "../../core/codec.js";
import { CURRENT_SCHEMA } from "../../core/envelope.js";
import type { StreamRef } from "../../core/keys.js";

const STREAM = "{p0}:es:conversation:c1";

/** A well-formed chain of n entries with offsets 1000-0, 1001-0, … */
function chain(n: number, texts: string[] = []): StoredEntry[] {
  let h = GENESIS_HASH;
  return Array.from({ length: n }, (_, i) => {
    const bytes = encodeEvent({ s: CURRENT_SCHEMA, type: "message.received", version: i + 1, at: "2026-11-21T00:00:00.000Z", data: { text: texts[i] ?? `m${i}` } });
    h = chainHash(h, bytes);
    return { offset: `${1000 + i}-0`, bytes, hash: h };
  });
}

describe("audit verify (pure)", () => {
  it("accepts a well-formed chain and ends at its head", async () => {
    const es = chain(5);
    const r = await verifyStream(STREAM, es, { head: { version: 5, hash: es[4]?.hash ?? "", lastOffset: "1004-0" } });
    expect(r.break).toBeUndefined();
    expect(r.events).toBe(5);
    expect(r.state).toEqual({ version: 5, hash: es[4]?.hash, offset: "1004-0" });
  });

  it("an empty stream with an empty head verifies", async () => {
    const r = await verifyStream(STREAM, [], { head: { version: 0, hash: GENESIS_HASH, lastOffset: null } });
    expect(r).toEqual({ stream: STREAM, events: 0, state: GENESIS_STATE });
  });

  it("changing any byte of any stored event or hash breaks the chain exactly at that entry", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.nat(),
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.array(fc.string(), { maxLength: 8 }),
        async (n, which, inHash, pos, mask, texts) => {
          const es = chain(n, texts);
          const i = which % n;
          const victim = es[i] as StoredEntry;
          if (inHash) {
            const b = Buffer.from(victim.hash, "latin1");
            const j = pos % b.length;
            b[j] = (b[j] as number) ^ mask;
            es[i] = { ...victim, hash: b.toString("latin1") };
          } else {
            const b = Buffer.from(victim.bytes);
            const j = pos % b.length;
            b[j] = (b[j] as number) ^ mask;
            es[i] = { ...victim, bytes: b };
          }
          const r = await verifyStream(STREAM, es);
          expect(r.break).toMatchObject({ stream: STREAM, version: i + 1, offset: victim.offset });
          expect(r.events).toBe(i);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("names a version gap, a dropped entry and offsets out of order", async () => {
    const es = chain(4);
    const gap = await verifyStream(STREAM, [es[0], es[2], es[3]] as StoredEntry[]);
    expect(gap.break).toMatchObject({ version: 2, offset: "1002-0", kind: "version-gap" });
    const swapped = await verifyStream(STREAM, [es[0], { ...(es[1] as StoredEntry), offset: "999-0" }] as StoredEntry[]);
    expect(swapped.break).toMatchObject({ version: 2, kind: "offset-order" });
    const trimmed = await verifyStream(STREAM, es.slice(2));
    expect(trimmed.break?.reason).toMatch(/history starts at version 3/);
  });

  it("compares the head record: a truncated stream or a forged head is a break", async () => {
    const es = chain(3);
    const short = await verifyStream(STREAM, es.slice(0, 2), { head: { version: 3, hash: es[2]?.hash ?? "", lastOffset: "1002-0" } });
    expect(short.break).toMatchObject({ version: 3, offset: null, kind: "head-mismatch" });
    const forged = await verifyStream(STREAM, es, { head: { version: 2, hash: "f".repeat(64), lastOffset: "1001-0" } });
    expect(forged.break).toMatchObject({ version: 2, kind: "head-mismatch" });
    // Entries after the head (appended during the walk) are fine.
    const ahead = await verifyStream(STREAM, es, { head: { version: 2, hash: es[1]?.hash ?? "", lastOffset: "1001-0" } });
    expect(ahead.break).toBeUndefined();
  });

  it("history = archive first, then live entries after the last archived offset, once each", async () => {
    const es = chain(6);
    const ref: StreamRef = { kind: "conversation", id: "c1" };
    const after = (from: string | undefined, to: string | undefined) => (e: StoredEntry) =>
      (from === undefined || e.offset > from) && (to === undefined || e.offset <= to);
    const source = (list: StoredEntry[]): EntrySource => ({
      async *entries(_s, range = {}) {
        yield* list.filter(after(range.from, range.to));
      },
    });
    // The archive holds 1..4, Redis still holds 3..6 (archived but not yet trimmed overlap).
    const sources = { archive: source(es.slice(0, 4)), live: source(es.slice(2)) };
    const all: string[] = [];
    for await (const e of history(sources, ref)) all.push(e.offset);
    expect(all).toEqual(es.map((e) => e.offset));
    const r = await verifyStream(STREAM, history(sources, ref));
    expect(r.break).toBeUndefined();
    const part: string[] = [];
    for await (const e of history(sources, ref, { from: "1001-0", to: "1004-0" })) part.push(e.offset);
    expect(part).toEqual(["1002-0", "1003-0", "1004-0"]);
    const none: string[] = [];
    for await (const e of history({ live: source(es) }, ref, { from: "1005-0" })) none.push(e.offset);
    expect(none).toEqual([]);
  });
});
