import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewEvent } from "../../core/envelope.js";
import { TributaryError } from "../../core/errors.js";
import { keys, streamKeys, type StreamRef } from "../../core/keys.js";
import { createRedisEventStore, type RedisEventStore } from "../../core/redis/event-store.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";
import { conversationInPartition } from "../support/streams.js";

/**
 * AppendOptions.dedupeTtlMs (docs/operations.md, "Sizing Redis memory"): an append may keep its
 * dedupe record shorter than IDEM_TTL — never longer — through group commit (one script call may
 * carry appends of different TTLs, each keeps its own) and through the one-append script; within
 * its TTL a retry still answers the first result.
 */
const PARTITIONS = 4;
const IDEM_TTL = 600_000;
const at = "2026-12-06T00:00:00.000Z";
const ev = (type: string): NewEvent => ({ type, data: {}, at });
const convIn = (p: number): StreamRef => conversationInPartition(p, PARTITIONS, "ttl");
const idemOf = (ref: StreamRef, commandId: string): string => keys.idem(streamKeys(ref, PARTITIONS).partition, `${ref.kind}:${ref.id}:${commandId}`);

describe.each(REDIS_MODES)("dedupe TTL per append (%s)", (mode) => {
  let r: TestRedis;
  let grouped: RedisEventStore;
  let alone: RedisEventStore;
  beforeAll(async () => {
    r = await testRedis(mode);
    grouped = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: IDEM_TTL, groupCommit: { maxInFlight: 1 } });
    alone = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: IDEM_TTL, groupCommit: false });
  });
  afterAll(() => r.cleanup());

  for (const [name, store] of [
    ["group commit", () => grouped],
    ["one append per call", () => alone],
  ] as const) {
    it(`${name}: each append of one tick keeps its own TTL, and a short one still dedupes while it lives`, async () => {
      const s = store();
      const [X, Y, Z] = [convIn(1), convIn(1), convIn(1)] as [StreamRef, StreamRef, StreamRef];
      const before = { ...(grouped.groupCommitStats ?? { calls: 0, items: 0, largest: 0 }) };
      // Issued in the same tick: with group commit they share one script call.
      const [x, y, z] = await Promise.all([
        s.append(X, 0, [ev("x")], "x1"),
        s.append(Y, 0, [ev("y")], "y1", { dedupeTtlMs: 5_000 }),
        s.append(Z, 0, [ev("z")], "z1", { dedupeTtlMs: 10 * IDEM_TTL }),
      ]);
      if (s === grouped) expect((grouped.groupCommitStats?.calls ?? 0) - before.calls).toBe(1);
      expect([x.duplicate, y.duplicate, z.duplicate]).toEqual([false, false, false]);
      const [px, py, pz] = await Promise.all([X, Y, Z].map((ref, i) => r.client.pttl(idemOf(ref, ["x1", "y1", "z1"][i] as string))));
      expect(px).toBeGreaterThan(IDEM_TTL - 30_000);
      expect(py).toBeGreaterThan(0);
      expect(py).toBeLessThanOrEqual(5_000);
      // Never longer than IDEM_TTL.
      expect(pz).toBeGreaterThan(IDEM_TTL - 30_000);
      expect(pz).toBeLessThanOrEqual(IDEM_TTL);
      // A retry at the stale version, within the short TTL: the first result, nothing appended.
      const again = await s.append(Y, 0, [ev("y")], "y1", { dedupeTtlMs: 5_000 });
      expect(again).toMatchObject({ duplicate: true, fromVersion: 1, toVersion: 1, offsets: y.offsets });
      expect(await r.client.xlen(streamKeys(Y, PARTITIONS).stream)).toBe(1);
    });
  }

  it("a record that expired no longer answers: the retry is refused by its expected version instead", async () => {
    const X = convIn(2);
    await grouped.append(X, 0, [ev("x")], "short", { dedupeTtlMs: 1 });
    await new Promise((res) => setTimeout(res, 30));
    expect(await r.client.exists(idemOf(X, "short"))).toBe(0);
    await expect(grouped.append(X, 0, [ev("x")], "short", { dedupeTtlMs: 1 })).rejects.toMatchObject({ code: "CONFLICT" });
    expect(await r.client.xlen(streamKeys(X, PARTITIONS).stream)).toBe(1);
  });

  it("with IDEM_TTL 0 (remember forever) an append's own TTL still applies, and the others keep no expiry", async () => {
    const forever = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 0, groupCommit: { maxInFlight: 1 } });
    const [X, Y] = [convIn(2), convIn(2)] as [StreamRef, StreamRef];
    await Promise.all([forever.append(X, 0, [ev("x")], "kept"), forever.append(Y, 0, [ev("y")], "short", { dedupeTtlMs: 5_000 })]);
    expect(await r.client.pttl(idemOf(X, "kept"))).toBe(-1);
    const short = await r.client.pttl(idemOf(Y, "short"));
    expect(short).toBeGreaterThan(0);
    expect(short).toBeLessThanOrEqual(5_000);
  });

  it("refuses a TTL that is not a whole number of ms ≥ 1, and appends nothing", async () => {
    const X = convIn(3);
    for (const bad of [0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const e = await grouped.append(X, 0, [ev("x")], `bad-${bad}`, { dedupeTtlMs: bad }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(TributaryError);
      expect(e).toMatchObject({ code: "BAD_REQUEST" });
    }
    expect(await r.client.exists(streamKeys(X, PARTITIONS).stream)).toBe(0);
  });
});
