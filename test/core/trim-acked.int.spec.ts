import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareOffsets } from "../../core/envelope.js";
import { LuaScript } from "../../core/redis/lua-script.js";
import { StreamConsumer } from "../../core/redis/consumer.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

/**
 * Trimming what every group acknowledged (core/redis/scripts/trim-acked-1.lua, the consumer's
 * `trimAcknowledged`, on for the command streams): nothing pending or undelivered for any group is
 * removed, everything below that is, and the groups' lag stays computable (the gateway's
 * backpressure reads it).
 */
const trim = LuaScript.file("trim-acked-1.lua");
type Op = { kind: "add"; n: number } | { kind: "read"; group: number; n: number } | { kind: "ack"; group: number; pick: number[] };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("add" as const), n: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant("read" as const), group: fc.integer({ min: 0, max: 1 }), n: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant("ack" as const), group: fc.integer({ min: 0, max: 1 }), pick: fc.array(fc.nat(), { maxLength: 4 }) }),
);

const cmp = compareOffsets;

describe.each(REDIS_MODES)("trim-acked-1.lua (%s)", (mode) => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await testRedis(mode);
  });
  afterAll(() => r.cleanup());

  it("removes exactly what every group delivered and acknowledged, and keeps lag computable", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const stream = `{p1}:cmd:trim:${randomUUID().slice(0, 8)}`;
        const groups = ["g0", "g1"];
        await r.client.xadd(stream, "*", "c", "seed");
        for (const g of groups) await r.client.xgroup("CREATE", stream, g, "0");
        const pending: Array<Set<string>> = [new Set(), new Set()];
        const delivered: string[] = ["0-0", "0-0"];
        for (const o of ops) {
          if (o.kind === "add") for (let i = 0; i < o.n; i++) await r.client.xadd(stream, "*", "c", String(i));
          else if (o.kind === "read") {
            const reply = (await r.client.xreadgroup("GROUP", groups[o.group] as string, "c", "COUNT", o.n, "STREAMS", stream, ">")) as [string, [string, string[]][]][] | null;
            for (const [id] of reply?.[0]?.[1] ?? []) {
              pending[o.group]?.add(id);
              delivered[o.group] = id;
            }
          } else {
            const ids = [...(pending[o.group] ?? [])];
            const chosen = o.pick.map((k) => ids[k % Math.max(1, ids.length)]).filter((x): x is string => x !== undefined);
            if (chosen.length > 0) await r.client.xack(stream, groups[o.group] as string, ...chosen);
            for (const id of chosen) pending[o.group]?.delete(id);
          }
        }
        const before = ((await r.client.xrange(stream, "-", "+")) as [string, string[]][]).map(([id]) => id);
        // Each group's bound: its oldest pending entry, else its last-delivered id; the lowest wins.
        const bounds = groups.map((_, g) => [...(pending[g] ?? [])].sort(cmp)[0] ?? (delivered[g] as string));
        const bound = bounds.sort(cmp)[0] as string;
        const removed = Number(await trim.run(r.client, [stream], []));
        const after = ((await r.client.xrange(stream, "-", "+")) as [string, string[]][]).map(([id]) => id);
        expect(after).toEqual(before.filter((id) => cmp(id, bound) >= 0));
        expect(removed).toBe(before.length - after.length);
        // Nothing pending or undelivered for any group is gone.
        for (let g = 0; g < groups.length; g++) {
          for (const id of pending[g] ?? []) expect(after).toContain(id);
          for (const id of before.filter((x) => cmp(x, delivered[g] as string) > 0)) expect(after).toContain(id);
        }
        const info = (await r.client.xinfo("GROUPS", stream)) as unknown[][];
        for (const g of info) {
          const f = new Map<string, unknown>();
          for (let i = 0; i + 1 < g.length; i += 2) f.set(String(g[i]), g[i + 1]);
          const gi = groups.indexOf(String(f.get("name")));
          expect(f.get("lag")).toBe(before.filter((x) => cmp(x, delivered[gi] as string) > 0).length);
        }
        await r.client.del(stream);
      }),
      { numRuns: mode === "cluster" ? 25 : 60 },
    );
  });

  it("leaves a stream without groups, and a missing one, alone", async () => {
    const stream = `{p2}:cmd:trim:${randomUUID().slice(0, 8)}`;
    expect(Number(await trim.run(r.client, [stream], []))).toBe(0);
    await r.client.xadd(stream, "*", "c", "1");
    expect(Number(await trim.run(r.client, [stream], []))).toBe(0);
    expect(await r.client.xlen(stream)).toBe(1);
    await r.client.del(stream);
  });

  it("a consumer with trimAcknowledged empties its stream down to the last entry, keeping a failing one until it is dead-lettered", async () => {
    const name = randomUUID().slice(0, 8);
    const streamOf = (p: number) => `{p${p}}:cmd:trimc:${name}`;
    const stream = streamOf(0);
    for (let i = 0; i < 40; i++) await r.client.xadd(stream, "*", "n", String(i));
    const seen = new Set<number>();
    const consumer = new StreamConsumer({
      redis: r.client,
      group: "actors",
      consumer: "c1",
      partitions: () => [0],
      streamOf,
      handler: async (batch) => {
        const failed = new Map<string, unknown>();
        for (const m of batch) {
          const n = Number(m.fields.n?.toString());
          if (n === 7) failed.set(m.id, new Error("poison"));
          else seen.add(n);
        }
        return failed;
      },
      maxDeliveries: 2,
      claimIdleMs: 200,
      retryBaseMs: 20,
      retryMaxMs: 40,
      blockMs: 20,
      lagIntervalMs: 30,
      trimAcknowledged: true,
    });
    consumer.start();
    try {
      const until = Date.now() + 20_000;
      while (!(seen.size === 39 && (await r.client.xlen(stream)) <= 1 && consumer.counters().deadLettered === 1)) {
        if (Date.now() > until) throw new Error(`stream still holds ${await r.client.xlen(stream)} entries, ${seen.size} seen`);
        await new Promise((res) => setTimeout(res, 20));
      }
    } finally {
      await consumer.stop();
    }
    expect(seen.size).toBe(39);
    await r.client.del(stream, `{p0}:redrive:actors`, `{p0}:dlq`);
  });
});
