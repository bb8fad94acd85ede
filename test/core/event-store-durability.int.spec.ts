import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/**
 * DURABILITY=wait-replica on a client that never ran the append script before (a freshly started
 * process): the append must reach Redis and WAIT must be what fails on a server without replicas —
 * not the pipeline, for want of the script being defined on the client.
 */
describe("wait-replica on a fresh client", () => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await testRedis("single");
  });
  afterAll(async () => r?.cleanup());

  it("appends, then answers UNAVAILABLE because no replica acknowledged; a retry is a duplicate", async () => {
    const fresh = r.duplicate();
    const store = createRedisEventStore(fresh, { partitions: 4, idemTtlMs: 60_000, durability: "wait-replica", replicaTimeoutMs: 50 });
    const ref = { kind: "conversation" as const, id: `dur-${Math.random().toString(36).slice(2)}` };
    const ev = [{ type: "x", data: {}, at: new Date().toISOString() }];
    await expect(store.append(ref, 0, ev, "c1")).rejects.toMatchObject({ code: "UNAVAILABLE" });
    const local = createRedisEventStore(r.client, { partitions: 4, idemTtlMs: 60_000 });
    expect((await local.head(ref)).version).toBe(1);
    await expect(store.append(ref, 0, ev, "c1")).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect((await local.head(ref)).version).toBe(1);
    fresh.disconnect();
  });
});
