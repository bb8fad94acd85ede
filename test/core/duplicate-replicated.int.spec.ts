import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { SINGLE_URL, testRedis, type TestRedis } from "../support/redis.js";

/**
 * A duplicate answer must be as durable as the first append before it is acknowledged: under
 * wait-replica the store WAITs after the script call, and WAIT covers only what that connection
 * wrote — a retry on a new connection (after a reconnect, or redelivered to another worker) wrote
 * nothing, so WAIT answered at once, and a failover could then lose the first append although the
 * retry had been answered 201 (seen in test/chaos/cluster-failover.spec.ts). The scripts now rewrite
 * the dedupe record on a duplicate: a write after the first append in the replication stream. Seen
 * here as the keyspace event of that write, for both the grouped and the single-append script.
 */
describe("a duplicate append writes (so that WAIT covers the first append)", () => {
  let r: TestRedis;
  let sub: Redis;
  let before: string;
  beforeAll(async () => {
    r = await testRedis("single");
    sub = new Redis(SINGLE_URL);
    before = ((await r.client.config("GET", "notify-keyspace-events")) as string[])[1] ?? "";
    await r.client.config("SET", "notify-keyspace-events", "K$");
  });
  afterAll(async () => {
    await r.client.config("SET", "notify-keyspace-events", before);
    sub?.disconnect();
    await r?.cleanup();
  });

  for (const groupCommit of [undefined, false] as const) {
    it(groupCommit === false ? "append-5.lua" : "append-group.lua", async () => {
      const store = createRedisEventStore(r.client, { partitions: 4, idemTtlMs: 60_000, ...(groupCommit === false ? { groupCommit } : {}) });
      const ref = { kind: "conversation" as const, id: `dup-${groupCommit}` };
      const events = [{ type: "x", data: {}, at: new Date().toISOString() }];
      const first = await store.append(ref, 0, events, "cmd-1");
      const seen: string[] = [];
      await sub.psubscribe(`__keyspace@0__:${r.prefix}*idem*`);
      sub.on("pmessage", (_p, channel, op) => seen.push(`${op} ${channel}`));
      // A second store = a fresh head cache, as a retry in another process would have.
      const again = await createRedisEventStore(r.client, { partitions: 4, idemTtlMs: 60_000, ...(groupCommit === false ? { groupCommit } : {}) }).append(ref, 0, events, "cmd-1");
      expect(again.duplicate).toBe(true);
      expect(again.toVersion).toBe(first.toVersion);
      await new Promise((res) => setTimeout(res, 100));
      await sub.punsubscribe();
      sub.removeAllListeners("pmessage");
      expect(seen.some((s) => s.startsWith("set ") && s.includes("cmd-1"))).toBe(true);
    });
  }
});
