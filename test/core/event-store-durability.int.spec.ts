import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { privateRedis, type PrivateRedis } from "../support/private-services.js";
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

/**
 * The durability barrier (EventStore.confirm) on a real master + replica: an append whose WAIT timed
 * out is on the master but not on the replica; anything answered from reading it (a duplicate's
 * first answer) must wait for the replica too — while the replica is frozen the barrier refuses,
 * once it catches up the barrier passes.
 */
describe("wait-replica durability barrier with a real replica", () => {
  let master: PrivateRedis;
  let replica: PrivateRedis;
  let client: Redis;
  beforeAll(async () => {
    master = await privateRedis({ args: ["--appendonly", "no"] });
    replica = await privateRedis({ args: ["--appendonly", "no", "--replicaof", "127.0.0.1", String(master.port)] });
    client = new Redis(master.url);
    await vi.waitFor(async () => expect(await client.wait(1, 100)).toBe(1), { timeout: 20_000, interval: 100 });
  }, 60_000);
  afterAll(async () => {
    if (replica?.pid) process.kill(replica.pid, "SIGCONT");
    client?.disconnect();
    await replica?.cleanup();
    await master?.cleanup();
  });

  it("refuses while the replica lacks what was read, passes once it has it; local mode never waits", async () => {
    const store = createRedisEventStore(client, { partitions: 4, idemTtlMs: 60_000, durability: "wait-replica", replicaTimeoutMs: 200 });
    const ref = { kind: "conversation" as const, id: `bar-${Math.random().toString(36).slice(2)}` };
    const ev = [{ type: "x", data: {}, at: new Date().toISOString() }];
    expect((await store.append(ref, 0, ev, "c1")).toVersion).toBe(1);
    await store.confirm?.(ref);
    process.kill(replica.pid as number, "SIGSTOP");
    let readerClient: Redis | undefined;
    try {
      // On the master, not confirmed: the append is refused, and so is the barrier of a later reader.
      await expect(store.append(ref, 1, ev, "c2")).rejects.toMatchObject({ code: "UNAVAILABLE" });
      readerClient = new Redis(master.url);
      const reader = createRedisEventStore(readerClient, { partitions: 4, idemTtlMs: 60_000, durability: "wait-replica", replicaTimeoutMs: 200 });
      expect((await reader.head(ref)).version).toBe(2);
      await expect(reader.confirm?.(ref)).rejects.toMatchObject({ code: "UNAVAILABLE" });
      // `local` promises nothing beyond the master: no barrier.
      await createRedisEventStore(client, { partitions: 4, idemTtlMs: 60_000 }).confirm?.(ref);
      process.kill(replica.pid as number, "SIGCONT");
      await vi.waitFor(() => expect(reader.confirm?.(ref)).resolves.toBeUndefined(), { timeout: 20_000, interval: 100 });
    } finally {
      process.kill(replica.pid as number, "SIGCONT");
      readerClient?.disconnect();
    }
  }, 60_000);

  /**
   * A duplicate writes nothing, and WAIT is documented to cover the writes of the connection that
   * sends it: on a connection that has not written since (another worker's, a reconnected one) the
   * retry could be acknowledged while the first append is on the master only, then lost with it.
   * Redis 7.0 moves a connection's WAIT offset on every command, reads included, so the script's
   * own call is enough (checked here, session 6: no extra write is needed); this test holds the
   * store to that on a real master + replica.
   */
  it.each([
    ["group commit", {}],
    ["one call per append", { groupCommit: false as const }],
  ])("a retry answered as a duplicate on a fresh connection waits for the replica too (%s)", async (_name, extra) => {
    const store = createRedisEventStore(client, { partitions: 4, idemTtlMs: 60_000, durability: "wait-replica", replicaTimeoutMs: 200, ...extra });
    const ref = { kind: "conversation" as const, id: `dup-${Math.random().toString(36).slice(2)}` };
    const ev = [{ type: "x", data: {}, at: new Date().toISOString() }];
    expect((await store.append(ref, 0, ev, "c1")).toVersion).toBe(1);
    process.kill(replica.pid as number, "SIGSTOP");
    const otherClient = new Redis(master.url);
    try {
      await expect(store.append(ref, 1, ev, "c2")).rejects.toMatchObject({ code: "UNAVAILABLE" });
      const other = createRedisEventStore(otherClient, { partitions: 4, idemTtlMs: 60_000, durability: "wait-replica", replicaTimeoutMs: 200, ...extra });
      await expect(other.append(ref, 1, ev, "c2")).rejects.toMatchObject({ code: "UNAVAILABLE" });
      process.kill(replica.pid as number, "SIGCONT");
      // Once the replica has caught up, the same retry is the first result, acknowledged.
      await vi.waitFor(async () => expect(await other.append(ref, 1, ev, "c2")).toMatchObject({ duplicate: true, toVersion: 2 }), { timeout: 20_000, interval: 100 });
    } finally {
      process.kill(replica.pid as number, "SIGCONT");
      otherClient.disconnect();
    }
  }, 60_000);
});
