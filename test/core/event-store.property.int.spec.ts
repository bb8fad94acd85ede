import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditAll, auditStream } from "../../core/audit/walker.js";
import type { NewEvent } from "../../core/envelope.js";
import { VersionConflictError } from "../../core/errors.js";
import type { AppendResult, EventStore } from "../../core/event-store.js";
import { streamKeys, type StreamRef } from "../../core/keys.js";
import { createRedisEntrySource, type RedisEntrySource } from "../../core/redis/entry-source.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

/**
 * I2 as properties, on a single Redis and on the 3-master cluster: concurrent appends with stale or
 * fresh expected versions never leave gaps, never lose or duplicate an accepted append, never keep
 * a rejected one; retried command ids answer the first result; the chain verifies; and any flipped
 * byte in a stored entry makes the audit fail exactly there.
 */
const PARTITIONS = 8;
const at = "2026-11-21T00:00:00.000Z";

interface Op {
  stream: number;
  /** 0 = the head as read at the start of the round; k > 0 = k versions behind; -1 = one ahead. */
  staleness: number;
  size: number;
  /** Reuse the command id of an earlier op on the same stream (a retry), when there is one. */
  retryOf: number | null;
}

const opArb = fc.record({
  stream: fc.nat({ max: 2 }),
  staleness: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -1, max: 2 }) }),
  size: fc.integer({ min: 1, max: 3 }),
  retryOf: fc.option(fc.nat({ max: 40 }), { freq: 4 }),
});
const roundsArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 5 });

describe.each(REDIS_MODES)("event store properties (%s)", (mode) => {
  let r: TestRedis;
  let store: EventStore;
  let source: RedisEntrySource;
  beforeAll(async () => {
    r = await testRedis(mode);
    store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
    source = createRedisEntrySource(r.client, PARTITIONS, 7); // small pages exercise paging
  });
  afterAll(() => r.cleanup());

  it("concurrent appends: versions 1..n without gaps, accepted exactly once, rejected never, retries answer the first result", async () => {
    // Outcomes over all runs, so the test proves it exercised conflicts and retries at all.
    const seen = { accepted: 0, conflicts: 0, duplicates: 0 };
    await fc.assert(
      fc.asyncProperty(roundsArb, async (rounds) => {
        const streams: StreamRef[] = [0, 1, 2].map(() => ({ kind: "conversation", id: `p-${randomUUID()}` }));
        // Every op's events carry a unique tag, so presence can be counted exactly.
        const issued: Array<{ op: Op; commandId: string; tag: string; outcome?: AppendResult | "conflict" }> = [];
        let seq = 0;
        for (const round of rounds) {
          const heads = await Promise.all(streams.map((s) => store.head(s)));
          const launched = round.map((op) => {
            const earlier = op.retryOf === null ? [] : issued.filter((x) => x.op.stream === op.stream);
            const retried = earlier.length > 0 && op.retryOf !== null ? earlier[op.retryOf % earlier.length] : undefined;
            const commandId = retried?.commandId ?? `cmd-${seq}`;
            const tag = `op-${seq++}`;
            const rec: (typeof issued)[number] = { op, commandId, tag };
            issued.push(rec);
            const expected = Math.max(0, (heads[op.stream]?.version ?? 0) - op.staleness);
            const events: NewEvent[] = Array.from({ length: op.size }, (_, i) => ({ type: "t", data: { tag, i }, at }));
            return store.append(streams[op.stream] as StreamRef, expected, events, commandId).then(
              (res) => {
                rec.outcome = res;
              },
              (e: unknown) => {
                if (!(e instanceof VersionConflictError)) throw e;
                rec.outcome = "conflict";
              },
            );
          });
          await Promise.all(launched);
        }

        for (const [si, s] of streams.entries()) {
          const events = await store.read(s);
          expect(events.map((e) => e.version)).toEqual(events.map((_, i) => i + 1));
          const count = new Map<string, number>();
          for (const e of events) {
            const tag = (e.data as { tag: string }).tag;
            count.set(tag, (count.get(tag) ?? 0) + 1);
          }
          const mine = issued.filter((x) => x.op.stream === si);
          const firstByCommand = new Map<string, AppendResult>();
          for (const x of mine) {
            const o = x.outcome;
            expect(o).toBeDefined();
            if (o === "conflict") {
              seen.conflicts += 1;
              expect(count.get(x.tag)).toBeUndefined();
            } else if (o && !o.duplicate) {
              seen.accepted += 1;
              expect(count.get(x.tag)).toBe(x.op.size);
              expect(firstByCommand.has(x.commandId)).toBe(false); // a command id never appends twice
              firstByCommand.set(x.commandId, o);
              const got = events.slice(o.fromVersion - 1, o.toVersion);
              expect(got.map((e) => e.offset)).toEqual(o.offsets);
            }
          }
          for (const x of mine) {
            const o = x.outcome;
            if (o && o !== "conflict" && o.duplicate) {
              seen.duplicates += 1;
              expect(count.get(x.tag)).toBeUndefined();
              expect(o).toEqual({ ...firstByCommand.get(x.commandId), duplicate: true });
            }
          }
          const accepted = [...firstByCommand.values()].reduce((n, o) => n + o.toVersion - o.fromVersion + 1, 0);
          expect(events.length).toBe(accepted);
          const audit = await auditStream({ ref: s, key: source.keyOf(s) }, { live: source, head: source.head });
          expect(audit.break).toBeUndefined();
          expect(audit.events).toBe(events.length);
        }
      }),
      { numRuns: 40 },
    );
    expect(seen.accepted).toBeGreaterThan(0);
    expect(seen.conflicts).toBeGreaterThan(0);
    expect(seen.duplicates).toBeGreaterThan(0);
  });

  it("a flipped byte in a stored entry's e or h makes audit verify fail at that entry", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.nat(),
        fc.constantFrom("e", "h"),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (n, which, field, pos, mask) => {
          const s: StreamRef = { kind: "conversation", id: `t-${randomUUID()}` };
          for (let v = 0; v < n; v++) await store.append(s, v, [{ type: "t", data: { v, pad: "x".repeat(v * 7) }, at }], `c${v}`);
          const key = streamKeys(s, PARTITIONS).stream;
          const raw = await r.client.xrangeBuffer(key, "-", "+");
          const i = which % n;
          // Rebuild the stream with the same entry ids and one byte flipped.
          const p = r.client.multi();
          p.del(key);
          for (const [j, [id, flat]] of raw.entries()) {
            const fields = flat.map((b) => Buffer.from(b));
            if (j === i) {
              const vi = fields.findIndex((b, k) => k % 2 === 0 && b.toString() === field) + 1;
              const val = fields[vi] as Buffer;
              const idx = pos % val.length;
              val[idx] = (val[idx] as number) ^ mask;
            }
            p.xadd(key, id.toString(), ...fields);
          }
          await p.exec();
          const audit = await auditStream({ ref: s, key }, { live: source, head: source.head });
          expect(audit.break).toMatchObject({ stream: key, version: i + 1, offset: (raw[i]?.[0] as Buffer).toString() });
        },
      ),
      { numRuns: 40 },
    );
  });

  it("audits every stream via SCAN (on every master of the cluster) and stops at the first break", async () => {
    const refs: StreamRef[] = Array.from({ length: 12 }, () => ({ kind: "conversation", id: `a-${randomUUID()}` }));
    for (const s of refs) await store.append(s, 0, [{ type: "t", data: {}, at }, { type: "u", data: {}, at }], "c");
    const all: string[] = [];
    for await (const t of source.streams()) all.push(t.key);
    // Earlier tests in this file left streams under the same prefix: ours must all be there.
    for (const s of refs) expect(all).toContain(source.keyOf(s));
    if (mode === "cluster") {
      const partitionsSeen = new Set(refs.map((s) => streamKeys(s, PARTITIONS).partition));
      expect(partitionsSeen.size).toBeGreaterThan(1);
    }
    const before = await auditAll(source.streams(), { live: source, head: source.head });
    // The tamper test above left broken streams under this prefix: only check ours here.
    const mine = new Set(refs.map((s) => source.keyOf(s)));
    async function* only(): AsyncGenerator<{ ref: StreamRef; key: string }> {
      for await (const t of source.streams()) if (mine.has(t.key)) yield t;
    }
    const ok = await auditAll(only(), { live: source, head: source.head });
    expect(ok).toEqual({ streams: refs.length, events: 2 * refs.length });
    expect(before.streams).toBeGreaterThan(0);
    // Break one: remove the last entry but keep the head record.
    const victim = refs[5] as StreamRef;
    const key = source.keyOf(victim);
    const last = await r.client.xrevrange(key, "+", "-", "COUNT", 1);
    await r.client.xdel(key, last[0]?.[0] ?? "");
    const broken = await auditAll(only(), { live: source, head: source.head });
    expect(broken.break).toMatchObject({ stream: key, version: 2, offset: null, kind: "head-mismatch" });
  });
});
