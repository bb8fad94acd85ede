import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/keys.js";
import { partitionOf } from "../../core/partition.js";
import { createRedisEventStore, type RedisEventStoreOptions } from "../../core/redis/event-store.js";
import { masters, REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

/**
 * A duplicate answer must be as durable as the first append before it is acknowledged: under
 * wait-replica the store WAITs after the script call, and WAIT covers only what that connection
 * wrote — a retry on a new connection (after a reconnect, or redelivered to another worker) wrote
 * nothing, so WAIT answered at once, and a failover could then lose the first append although the
 * retry had been answered 201 (seen in test/chaos/cluster-failover.spec.ts). Under wait-replica the
 * scripts therefore rewrite the dedupe record on a duplicate: a write after the first append in the
 * replication stream. Under local durability (the default) nothing WAITs, and a duplicate writes
 * nothing — no replicated or AOF write for an append that changes nothing.
 *
 * Seen here as keyspace events (`set`) on the dedupe key, for both scripts (append-group.lua,
 * append-5.lua with `groupCommit: false`), on every path to a duplicate: a retry with a stale
 * expected version, a retry carrying the current version (its claim fails), and the same command
 * twice in one call. The test servers have no replicas, so under wait-replica the WAIT times out and
 * the duplicate answers UNAVAILABLE (retry later) — after the script ran, which is what is observed.
 */
describe.each(REDIS_MODES)("a duplicate append writes only when a WAIT follows, on %s Redis", (mode) => {
  let r: TestRedis;
  const subs: Redis[] = [];
  const before = new Map<Redis, string>();
  const seen: string[] = [];

  beforeAll(async () => {
    r = await testRedis(mode);
    for (const node of masters(r.client)) {
      before.set(node, ((await node.config("GET", "notify-keyspace-events")) as string[])[1] ?? "");
      await node.config("SET", "notify-keyspace-events", "K$");
      const sub = new Redis({ host: node.options.host, port: node.options.port });
      sub.on("pmessage", (_p, channel, op) => seen.push(`${op} ${channel}`));
      await sub.psubscribe(`__keyspace@0__:${r.prefix}*idem*`);
      subs.push(sub);
    }
  });
  afterAll(async () => {
    for (const [node, value] of before) await node.config("SET", "notify-keyspace-events", value);
    for (const sub of subs) sub.disconnect();
    await r?.cleanup();
  });

  let n = 0;
  const fresh = () => ({ kind: "conversation" as const, id: `dup-${mode}-${++n}` });
  const events = () => [{ type: "x", data: {}, at: new Date().toISOString() }];
  // A new store each time = a fresh head cache, as a retry in another process would have.
  const store = (durability: "local" | "wait-replica", groupCommit: boolean) => {
    const o: RedisEventStoreOptions = { partitions: 4, idemTtlMs: 60_000, durability, replicaTimeoutMs: 20 };
    if (!groupCommit) o.groupCommit = false;
    return createRedisEventStore(r.client, o);
  };
  /** The keyspace events of `commandId`'s dedupe key that `run` caused (delivered asynchronously). */
  async function setsDuring(commandId: string, run: () => Promise<void>): Promise<number> {
    await new Promise((res) => setTimeout(res, 50));
    seen.length = 0;
    await run();
    await new Promise((res) => setTimeout(res, 150));
    const mine = seen.filter((s) => s.endsWith(`:${commandId}`));
    expect(mine.every((s) => s.startsWith("set "))).toBe(true);
    return mine.length;
  }
  const unavailable = { code: "UNAVAILABLE" };

  for (const groupCommit of [true, false]) {
    const script = groupCommit ? "append-group.lua" : "append-5.lua";

    it(`${script}, wait-replica: a retry with a stale expected version rewrites the dedupe record`, async () => {
      const ref = fresh();
      const first = await store("local", groupCommit).append(ref, 0, events(), "cmd-1");
      const sets = await setsDuring("cmd-1", async () => {
        const err = await store("wait-replica", groupCommit).append(ref, 0, events(), "cmd-1").catch((e: unknown) => e);
        expect(err).toMatchObject({ ...unavailable, details: { toVersion: first.toVersion } });
      });
      expect(sets).toBe(1);
      // Rewritten unchanged: the same first result, and its TTL kept.
      const idem = keys.idem(partitionOf(ref.id, 4), `conversation:${ref.id}:cmd-1`);
      expect(await r.client.get(idem)).toBe(`${first.fromVersion} ${first.toVersion} ${first.hash} ${first.offsets.join(" ")}`);
      expect(await r.client.pttl(idem)).toBeGreaterThan(50_000);
    });

    it(`${script}, local: the same retry is answered the first result and writes nothing`, async () => {
      const ref = fresh();
      const first = await store("local", groupCommit).append(ref, 0, events(), "cmd-1");
      const sets = await setsDuring("cmd-1", async () => {
        const again = await store("local", groupCommit).append(ref, 0, events(), "cmd-1");
        expect(again).toEqual({ ...first, duplicate: true });
      });
      expect(sets).toBe(0);
    });
  }

  for (const durability of ["local", "wait-replica"] as const) {
    const rewrites = durability === "wait-replica" ? 1 : 0;

    it(`append-group.lua, ${durability}: a retry carrying the current version (its claim fails) writes ${rewrites === 1 ? "the record again" : "nothing"}`, async () => {
      const ref = fresh();
      const first = await store("local", true).append(ref, 0, events(), "cmd-1");
      const sets = await setsDuring("cmd-1", async () => {
        const again = store(durability, true).append(ref, first.toVersion, events(), "cmd-1", { expectedHash: first.hash });
        if (durability === "local") expect(await again).toEqual({ ...first, duplicate: true });
        else await expect(again).rejects.toMatchObject(unavailable);
      });
      expect(sets).toBe(rewrites);
    });

    it(`append-group.lua, ${durability}: the same command twice in one call — one claim${rewrites === 1 ? ", one rewrite" : ", nothing more"}`, async () => {
      const ref = fresh();
      const s = store(durability, true);
      const sets = await setsDuring("cmd-1", async () => {
        const both = await Promise.allSettled([s.append(ref, 0, events(), "cmd-1"), s.append(ref, 0, events(), "cmd-1")]);
        if (durability === "local") {
          const [a, b] = both.map((x) => (x.status === "fulfilled" ? x.value : undefined));
          expect(a?.duplicate).toBe(false);
          expect(b).toEqual({ ...a, duplicate: true });
        } else {
          expect(both.map((x) => x.status)).toEqual(["rejected", "rejected"]);
        }
      });
      expect(s.groupCommitStats?.calls).toBe(1);
      expect(sets).toBe(1 + rewrites);
    });
  }
});
