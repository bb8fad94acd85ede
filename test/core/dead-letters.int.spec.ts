import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StreamMessage } from "../../core/consumer.js";
import { keys } from "../../core/keys.js";
import { StreamConsumer } from "../../core/redis/consumer.js";
import { deadLetters, moveToDeadLetters, parseDeadLetterId } from "../../core/redis/dead-letters.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

/**
 * The DLQ store against real Redis and the cluster: the atomic move (ack + copy, only while the
 * entry is still the caller's), list/show/purge across partitions, and redrive to the failing
 * group only when several groups share a partition log.
 */
const P = 4;

async function waitFor(check: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(REDIS_MODES)("dead letters on %s Redis", (mode) => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await testRedis(mode);
  });
  afterAll(() => r.cleanup());

  it("moves a pending entry with its fields, error and delivery count, and acknowledges it, once", async () => {
    const stream = `${keys.log(2)}:${randomUUID().slice(0, 6)}`;
    await r.client.call("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM");
    const id = (await r.client.call("XADD", stream, "*", "e", Buffer.from([0xde, 0xad]), "k", "{p2}:es:conversation:x")) as string;
    await r.client.call("XREADGROUP", "GROUP", "g", "me", "COUNT", 10, "STREAMS", stream, ">");

    // Not the owner: nothing happens.
    expect(await moveToDeadLetters(r.client, { partition: 2, stream, group: "g", id, owner: "someone-else", error: "x", deliveries: 1 })).toBeNull();
    const dlId = await moveToDeadLetters(r.client, { partition: 2, stream, group: "g", id, owner: "me", error: "boom", deliveries: 4 });
    expect(dlId).not.toBeNull();
    // Already acknowledged: a second move (a racing consumer) writes nothing.
    expect(await moveToDeadLetters(r.client, { partition: 2, stream, group: "g", id, owner: "", error: "again", deliveries: 5 })).toBeNull();
    expect(Number(((await r.client.call("XPENDING", stream, "g")) as unknown[])[0])).toBe(0);

    const store = deadLetters(r.client, P);
    const shown = await store.show(`2/${dlId}`);
    expect(shown).toMatchObject({ id: `2/${dlId}`, partition: 2, origin: stream, originId: id, group: "g", error: "boom", deliveries: 4, missing: false });
    expect(shown?.fields.e).toEqual(Buffer.from([0xde, 0xad]));
    expect(shown?.fields.k?.toString()).toBe("{p2}:es:conversation:x");
    expect(await store.show(`2/1-0`)).toBeNull();
    expect(() => parseDeadLetterId("9/1-0", P)).toThrow(/out of range/);
    expect(() => parseDeadLetterId("nonsense", P)).toThrow(/not a dead letter id/);

    expect(await store.purge(`2/${dlId}`)).toBe(1);
    await expect(store.purge(`2/${dlId}`)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("redrive reaches only the group that failed; the other group of the shared log sees the entry once", async () => {
    const run = randomUUID().slice(0, 6);
    const streamOf = (p: number) => `${keys.log(p)}:${run}`;
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await r.client.call("XADD", streamOf(i % P), "*", "n", String(i))) as string);
    const seen = { a: new Map<number, number>(), b: new Map<number, number>() };
    let heal = false;
    const groupA = `a-${run}`;
    const groupB = `b-${run}`;
    // All or nothing per batch, like a transaction: a failed batch has no effect.
    const count = (m: Map<number, number>) => async (batch: StreamMessage[]) => {
      const ns = batch.map((msg) => Number(msg.fields.n?.toString()));
      if (m === seen.a && ns.includes(5) && !heal) throw new Error("a cannot handle 5");
      for (const n of ns) m.set(n, (m.get(n) ?? 0) + 1);
    };
    const common = { redis: r.client, partitions: () => [0, 1, 2, 3], streamOf, maxDeliveries: 2, blockMs: 50, retryBaseMs: 10, retryMaxMs: 20, claimIdleMs: 500 };
    const a = new StreamConsumer({ ...common, group: groupA, consumer: "a1", handler: count(seen.a) });
    const b = new StreamConsumer({ ...common, group: groupB, consumer: "b1", handler: count(seen.b) });
    a.start();
    b.start();
    try {
      await waitFor(() => seen.b.size === 12 && seen.a.size === 11 && a.counters().deadLettered === 1, "b all, a all but the poison");
      const store = deadLetters(r.client, P);
      const [dead, ...more] = await store.list({ group: groupA });
      expect(more).toEqual([]);
      expect(dead).toMatchObject({ group: groupA, error: "a cannot handle 5", deliveries: 2, originId: ids[5] });
      expect(await store.list({ group: groupB })).toEqual([]);

      heal = true;
      expect(await store.redrive("all")).toBeGreaterThanOrEqual(1);
      await waitFor(() => seen.a.get(5) === 1, "a to process the redriven entry");
      await a.stop();
      await b.stop();
      expect(seen.b.get(5)).toBe(1);
      for (const m of [seen.a, seen.b]) for (let i = 0; i < 12; i++) expect(m.get(i)).toBe(1);
      expect(await store.list({ group: groupA })).toEqual([]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("lists across partitions with a limit, and purges everything", async () => {
    // A client with its own prefix, so `purge all` touches only this test's dead letters.
    const store = deadLetters(r.client, P);
    await store.purge("all");
    for (let p = 0; p < P; p++) {
      const stream = `${keys.cmd(p)}:${randomUUID().slice(0, 6)}`;
      await r.client.call("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM");
      for (let i = 0; i < 3; i++) await r.client.call("XADD", stream, "*", "i", String(i));
      const read = (await r.client.call("XREADGROUP", "GROUP", "g", "c", "COUNT", 10, "STREAMS", stream, ">")) as unknown;
      expect(read).toBeTruthy();
      const pending = (await r.client.call("XPENDING", stream, "g", "-", "+", 10)) as Array<[string]>;
      for (const [id] of pending) await moveToDeadLetters(r.client, { partition: p, stream, group: "g", id, owner: "c", error: "e", deliveries: 1 });
    }
    expect(await store.list({ limit: 1000 })).toHaveLength(3 * P);
    expect(await store.list({ limit: 5 })).toHaveLength(5);
    expect((await store.list({ partition: 1 })).every((d) => d.partition === 1 && d.id.startsWith("1/"))).toBe(true);
    expect([...(await store.count()).values()]).toEqual([3, 3, 3, 3]);
    expect(await store.purge("all")).toBe(3 * P);
    expect(await store.list()).toEqual([]);
  });
});
