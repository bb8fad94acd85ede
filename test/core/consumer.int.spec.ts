import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode, encodeEvent, decodeEvent } from "../../core/codec.js";
import type { StreamMessage } from "../../core/consumer.js";
import { keys } from "../../core/keys.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { StreamConsumer, type ConsumerOptions } from "../../core/redis/consumer.js";
import { deadLetters } from "../../core/redis/dead-letters.js";
import { PartitionLease } from "../../core/redis/lease.js";
import { CLUSTER_NODES, REDIS_MODES, SINGLE_URL, testRedis, type TestRedis } from "../support/redis.js";
import { Cluster, Redis } from "ioredis";

/**
 * The consumer-group runtime against a real Redis and the real 3-master cluster (no mocks): crash
 * take-over, poison isolation and the DLQ, redrive, undecodable input, graceful stop.
 */
const PARTITIONS = 4;

/** Poll until `check` holds; the deadline only turns a hang into a readable failure. */
async function waitFor(check: () => boolean | Promise<boolean>, what: string, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function event(n: number): Buffer {
  return encodeEvent({ s: 1, type: "test.happened", version: n, at: new Date(0).toISOString(), data: { n } });
}

/** Appends `count` events spread round-robin over the partitions' streams; returns "<stream> <id>" → n. */
async function produce(redis: RedisClient, streamOf: (p: number) => string, count: number, start = 0): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (let i = start; i < start + count; i++) {
    const stream = streamOf(i % PARTITIONS);
    const id = (await redis.call("XADD", stream, "*", "e", event(i), "n", String(i))) as string;
    out.set(i, `${stream} ${id}`);
  }
  return out;
}

const nOf = (m: StreamMessage): number => Number(m.fields.n?.toString());

async function pendingCount(redis: RedisClient, streams: string[], group: string): Promise<number> {
  let n = 0;
  for (const s of streams) {
    const summary = (await redis.call("XPENDING", s, group)) as [number, ...unknown[]];
    n += Number(summary[0]);
  }
  return n;
}

describe.each(REDIS_MODES)("StreamConsumer on %s Redis", (mode) => {
  let r: TestRedis;
  const all = Array.from({ length: PARTITIONS }, (_, i) => i);
  const consumers: StreamConsumer[] = [];

  beforeAll(async () => {
    r = await testRedis(mode);
  });
  afterAll(async () => {
    for (const c of consumers) await c.stop().catch(() => undefined);
    await r.cleanup();
  });

  /** A consumer on a fresh stream name per test, with fast retry settings. */
  function consumer(o: Partial<ConsumerOptions> & Pick<ConsumerOptions, "handler" | "streamOf" | "group">): StreamConsumer {
    const c = new StreamConsumer({
      redis: r.client,
      consumer: `c-${randomUUID().slice(0, 8)}`,
      partitions: () => all,
      maxDeliveries: 3,
      batchSize: 16,
      blockMs: 50,
      claimIdleMs: 300,
      retryBaseMs: 10,
      retryMaxMs: 40,
      ...o,
    });
    consumers.push(c);
    c.start();
    return c;
  }

  const freshStreams = () => {
    const run = randomUUID().slice(0, 8);
    return (p: number) => `${keys.log(p)}:${run}`;
  };

  it("delivers every entry once when nothing fails and acknowledges it", async () => {
    const streamOf = freshStreams();
    const seen = new Map<number, number>();
    await produce(r.client, streamOf, 100);
    const c = consumer({
      group: "g1",
      streamOf,
      handler: async (batch) => {
        for (const m of batch) seen.set(nOf(m), (seen.get(nOf(m)) ?? 0) + 1);
      },
    });
    await waitFor(() => seen.size === 100, "100 messages");
    await c.stop();
    expect([...seen.values()].every((v) => v === 1)).toBe(true);
    expect(c.counters()).toMatchObject({ processed: 100, retried: 0, deadLettered: 0, errors: 0 });
    expect(await pendingCount(r.client, all.map(streamOf), "g1")).toBe(0);
  });

  it("a consumer that dies mid-batch loses nothing: another takes its pending entries over", async () => {
    const streamOf = freshStreams();
    const effect = new Map<number, number>();
    let inFlight = 0;
    await produce(r.client, streamOf, 60);
    // The first consumer takes batches and never finishes them (it "dies" holding them).
    const dying = consumer({
      group: "g2",
      streamOf,
      handler: () => {
        inFlight++;
        return new Promise<void>(() => undefined);
      },
    });
    await waitFor(() => inFlight >= PARTITIONS, "the dying consumer to hold a batch per partition");
    dying.abort();
    expect(await pendingCount(r.client, all.map(streamOf), "g2")).toBeGreaterThan(0);

    const survivor = consumer({
      group: "g2",
      streamOf,
      handler: async (batch) => {
        for (const m of batch) effect.set(nOf(m), (effect.get(nOf(m)) ?? 0) + 1);
      },
    });
    await waitFor(() => effect.size === 60, "every message to reach the effect");
    await survivor.stop();
    expect(await pendingCount(r.client, all.map(streamOf), "g2")).toBe(0);
    expect(survivor.counters().retried).toBeGreaterThan(0);
    expect(survivor.counters().deadLettered).toBe(0);
  });

  it("exactly the poison messages end in the DLQ with reason and delivery count; redrive processes them once", async () => {
    const dlq = deadLetters(r.client, PARTITIONS);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 0, max: 39 }), { maxLength: 8 }), async (poisonList) => {
        const poison = new Set(poisonList);
        const streamOf = freshStreams();
        const group = `g3-${randomUUID().slice(0, 6)}`;
        const effect = new Map<number, number>();
        let healed = false;
        await produce(r.client, streamOf, 40);
        const handler = async (batch: StreamMessage[]) => {
          // A poison message fails its whole batch: the runtime must isolate it.
          const bad = batch.find((m) => poison.has(nOf(m)) && !healed);
          if (bad) throw new Error(`poison ${nOf(bad)}`);
          for (const m of batch) effect.set(nOf(m), (effect.get(nOf(m)) ?? 0) + 1);
        };
        const c = consumer({ group, streamOf, handler });
        await waitFor(() => c.counters().processed + c.counters().deadLettered === 40, "all settled");

        const mine = await dlq.list({ group, limit: 1000 });
        expect(mine.map((d) => Number(d.fields.n?.toString())).sort((a, b) => a - b)).toEqual([...poison].sort((a, b) => a - b));
        for (const d of mine) {
          expect(d.error).toBe(`poison ${Number(d.fields.n?.toString())}`);
          expect(d.deliveries).toBe(3);
          expect(d.group).toBe(group);
          expect(d.fields.e).toBeInstanceOf(Buffer);
          expect(decodeEvent(d.fields.e!).type).toBe("test.happened");
        }
        expect([...effect.keys()].sort((a, b) => a - b)).toEqual(
          Array.from({ length: 40 }, (_, i) => i).filter((i) => !poison.has(i)),
        );

        // Fixed: redrive puts them back for this group only; each is processed exactly once more.
        healed = true;
        const redriven = await Promise.all(mine.map((d) => dlq.redrive(d.id)));
        expect(redriven.reduce((a, b) => a + b, 0)).toBe(poison.size);
        await waitFor(() => c.counters().processed === 40, "redriven messages processed");
        await c.stop();
        for (let i = 0; i < 40; i++) expect(effect.get(i)).toBe(1);
        expect(await dlq.list({ group })).toEqual([]);
        const streams = [...all.map(streamOf), ...all.map((p) => keys.redrive(p, group))];
        expect(await pendingCount(r.client, streams, group)).toBe(0);
      }),
      { numRuns: 4 },
    );
  });

  it("undecodable entries (bad msgpack, unknown schema version) are dead-lettered at once; the rest goes on", async () => {
    const streamOf = freshStreams();
    const group = `g4-${randomUUID().slice(0, 6)}`;
    const dlq = deadLetters(r.client, PARTITIONS);
    const decoded = new Set<number>();
    await produce(r.client, streamOf, 10);
    await r.client.call("XADD", streamOf(1), "*", "e", Buffer.from([0xc1, 0xff, 0x00]), "n", "bad-msgpack");
    await r.client.call("XADD", streamOf(2), "*", "e", encode({ s: 99, type: "x", version: 1, at: "t", data: {} }), "n", "future");
    await produce(r.client, streamOf, 10, 10);
    const c = consumer({
      group,
      streamOf,
      handler: async (batch) => {
        for (const m of batch) decoded.add((decodeEvent(m.fields.e!).data as { n: number }).n);
      },
    });
    await waitFor(() => decoded.size === 20 && c.counters().deadLettered === 2, "good ones decoded, bad ones dead-lettered");
    await c.stop();
    const dead = await dlq.list({ group });
    const byN = new Map(dead.map((d) => [d.fields.n?.toString(), d]));
    expect(byN.get("bad-msgpack")?.error).toMatch(/permanent: not valid msgpack/);
    expect(byN.get("future")?.error).toMatch(/permanent: unknown schema version 99/);
    for (const d of dead) expect(d.deliveries).toBe(1);
    expect(await pendingCount(r.client, all.map(streamOf), group)).toBe(0);
  });

  it("graceful stop lets in-flight batches finish and acknowledges them", async () => {
    const streamOf = freshStreams();
    const group = "g5";
    const effect = new Set<number>();
    let started = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((res) => (release = res));
    await produce(r.client, streamOf, 30);
    const c = consumer({
      group,
      streamOf,
      handler: async (batch) => {
        started++;
        await gate;
        for (const m of batch) effect.add(nOf(m));
      },
    });
    await waitFor(() => started >= 1, "a batch in flight");
    const stopped = c.stop();
    release();
    await stopped;
    const acked = c.counters().processed;
    expect(acked).toBe(effect.size);
    expect(acked).toBeGreaterThan(0);
    // Everything the handler finished is acknowledged; whatever was not read stays for the next consumer.
    expect(await pendingCount(r.client, all.map(streamOf), group)).toBe(0);
  });

  it("follows partitions() at run time: a partition given away stops being read, its new reader finishes it", async () => {
    const streamOf = freshStreams();
    const group = `g6-${randomUUID().slice(0, 6)}`;
    let aParts = [0, 1, 2, 3];
    let bParts: number[] = [];
    const seen = new Map<number, string[]>();
    const handler = (who: string) => async (batch: StreamMessage[]) => {
      for (const m of batch) seen.set(nOf(m), [...(seen.get(nOf(m)) ?? []), who]);
    };
    await produce(r.client, streamOf, 20);
    const a = consumer({ group, streamOf, partitions: () => aParts, handler: handler("a") });
    const b = consumer({ group, streamOf, partitions: () => bParts, handler: handler("b") });
    await waitFor(() => seen.size === 20, "first 20");
    // Hand partitions 2 and 3 over from a to b, as a lease rebalance would.
    aParts = [0, 1];
    bParts = [2, 3];
    await new Promise((res) => setTimeout(res, 400)); // a's loops for 2 and 3 notice within blockMs
    await produce(r.client, streamOf, 20, 20);
    await waitFor(() => seen.size === 40, "next 20");
    await a.stop();
    await b.stop();
    for (let i = 20; i < 40; i++) expect(seen.get(i), `message ${i}`).toEqual([i % PARTITIONS < 2 ? "a" : "b"]);
  });

  it("two processes with leases share the partitions, and the survivor finishes a crashed one's work", async () => {
    const streamOf = freshStreams();
    const group = `g7-${randomUUID().slice(0, 6)}`;
    const role = `role-${randomUUID().slice(0, 6)}`;
    const effect = new Map<number, number>();
    let crashedHolds = 0;
    const mk = (name: string, hang: boolean) => {
      const lease = new PartitionLease({ redis: r.client, role, partitions: PARTITIONS, owner: name, ttlMs: 600, renewMs: 100, handoverGraceMs: 50 });
      lease.start();
      const c = consumer({
        group,
        streamOf,
        consumer: name,
        partitions: () => lease.owned(),
        handler: async (batch) => {
          if (hang) {
            crashedHolds++;
            return new Promise<void>(() => undefined);
          }
          for (const m of batch) effect.set(nOf(m), (effect.get(nOf(m)) ?? 0) + 1);
        },
      });
      return { lease, c };
    };
    const x = mk("x", true);
    const y = mk("y", false);
    await waitFor(() => x.lease.owned().length === 2 && y.lease.owned().length === 2, "an even split");
    await produce(r.client, streamOf, 40);
    await waitFor(() => crashedHolds >= 1 && effect.size >= 10, "both working");
    // x crashes: its consumer dies holding batches, its leases are never released.
    x.c.abort();
    x.lease.abandon();
    await waitFor(() => effect.size === 40, "y to take x's partitions and pending entries over");
    expect(y.lease.owned()).toEqual([0, 1, 2, 3]);
    await y.c.stop();
    await y.lease.stop();
    expect(await pendingCount(r.client, all.map(streamOf), group)).toBe(0);
    expect(y.c.counters().deadLettered).toBe(0);
  });

  it("works on a client with auto-pipelining (the production setting of ioredis)", async () => {
    const client: RedisClient =
      mode === "cluster"
        ? new Cluster(
            CLUSTER_NODES.map((hp) => ({ host: hp.split(":")[0]!, port: Number(hp.split(":")[1]) })),
            { keyPrefix: r.prefix, enableAutoPipelining: true },
          )
        : new Redis(SINGLE_URL, { keyPrefix: r.prefix, enableAutoPipelining: true });
    try {
      const streamOf = freshStreams();
      const group = `g8-${randomUUID().slice(0, 6)}`;
      const effect = new Set<number>();
      await produce(r.client, streamOf, 30);
      const c = consumer({
        redis: client,
        group,
        streamOf,
        handler: async (batch) => {
          if (batch.some((m) => nOf(m) === 7)) throw new Error("seven");
          for (const m of batch) effect.add(nOf(m));
        },
      });
      await waitFor(() => effect.size === 29 && c.counters().deadLettered === 1, "29 processed, one dead");
      await c.stop();
      const [dead] = await deadLetters(r.client, PARTITIONS).list({ group });
      expect(dead).toMatchObject({ error: "seven", deliveries: 3 });
    } finally {
      client.disconnect();
    }
  });

  it("an entry that crashes every consumer it reaches is dead-lettered after maxDeliveries; the rest goes on", async () => {
    const streamOf = freshStreams();
    const group = `g9-${randomUUID().slice(0, 6)}`;
    const effect = new Set<number>();
    await produce(r.client, streamOf, 8);
    // n = 4 "crashes the process": the consumer that receives it hangs and is aborted.
    const crashes = async (batch: StreamMessage[]) => {
      if (batch.some((m) => nOf(m) === 4)) return new Promise<void>(() => undefined);
      for (const m of batch) effect.add(nOf(m));
    };
    for (let round = 0; round < 2; round++) {
      let holding = false;
      const c = consumer({
        group,
        streamOf,
        batchSize: 1,
        maxDeliveries: 2,
        handler: async (batch) => {
          if (batch.some((m) => nOf(m) === 4)) holding = true;
          return crashes(batch);
        },
      });
      await waitFor(() => holding, `round ${round}: a consumer to take the crashing entry`);
      c.abort();
    }
    const last = consumer({ group, streamOf, batchSize: 1, maxDeliveries: 2, handler: crashes });
    await waitFor(() => last.counters().deadLettered === 1 && effect.size === 7, "the crashing entry dead-lettered, the others done");
    await last.stop();
    const [dead] = await deadLetters(r.client, PARTITIONS).list({ group });
    expect(dead?.fields.n?.toString()).toBe("4");
    expect(dead?.deliveries).toBe(2);
    expect(dead?.error).toMatch(/not acknowledged after 2 deliveries/);
  });

  it("reports lag: entries not yet delivered to the group", async () => {
    const streamOf = freshStreams();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((res) => (release = res));
    await produce(r.client, streamOf, 40);
    const c = consumer({ group: "g10", streamOf, batchSize: 2, lagIntervalMs: 10, handler: () => gate });
    await waitFor(() => c.counters().lag > 0, "a positive lag");
    expect(c.counters().lag).toBeLessThanOrEqual(40);
    release();
    await waitFor(() => c.counters().processed === 40, "all processed");
    await waitFor(() => c.counters().lag === 0, "lag back to 0");
    await c.stop();
  });
});
