import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GENESIS_HASH, chainHash } from "../../core/chain.js";
import type { NewEvent } from "../../core/envelope.js";
import { TributaryError, VersionConflictError } from "../../core/errors.js";
import type { EventStore } from "../../core/event-store.js";
import { keys, streamKeys, type StreamRef } from "../../core/keys.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

const PARTITIONS = 4;
const at = "2026-11-21T00:00:00.000Z";
const ev = (type: string, data: unknown = {}): NewEvent => ({ type, data, at });
const conv = (): StreamRef => ({ kind: "conversation", id: `c-${randomUUID()}` });

describe.each(REDIS_MODES)("redis event store (%s)", (mode) => {
  let r: TestRedis;
  let store: EventStore;
  beforeAll(async () => {
    r = await testRedis(mode);
    store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
  });
  afterAll(() => r.cleanup());

  it("appends a batch with versions from 1, reads it back and reports the head", async () => {
    const s = conv();
    const res = await store.append(s, 0, [ev("conversation.created", { title: "t" }), ev("message.received", { text: "hi" })], "cmd-1");
    expect(res).toMatchObject({ duplicate: false, fromVersion: 1, toVersion: 2 });
    expect(res.offsets).toHaveLength(2);
    const events = await store.read(s);
    expect(events.map((e) => [e.version, e.type, e.offset])).toEqual([
      [1, "conversation.created", res.offsets[0]],
      [2, "message.received", res.offsets[1]],
    ]);
    expect(events[0]?.data).toEqual({ title: "t" });
    expect(events[1]?.hash).toBe(res.hash);
    expect(await store.head(s)).toEqual({ version: 2, hash: res.hash, lastOffset: res.offsets[1] });
  });

  it("an empty stream's head is version 0 with the genesis hash", async () => {
    expect(await store.head(conv())).toEqual({ version: 0, hash: GENESIS_HASH, lastOffset: null });
  });

  it("rejects a stale expected version with CONFLICT naming the actual version", async () => {
    const s = conv();
    await store.append(s, 0, [ev("a")], "c1");
    const err = await store.append(s, 0, [ev("b")], "c2").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionConflictError);
    expect(err).toMatchObject({ code: "CONFLICT", expected: 0, actual: 1 });
    expect((await store.read(s)).map((e) => e.type)).toEqual(["a"]);
  });

  it("a retried command id returns the first result and appends nothing", async () => {
    const s = conv();
    const first = await store.append(s, 0, [ev("a"), ev("b")], "same");
    await store.append(s, 2, [ev("c")], "other");
    const again = await store.append(s, 0, [ev("a"), ev("b")], "same");
    expect(again).toEqual({ ...first, duplicate: true });
    expect((await store.read(s)).map((e) => e.type)).toEqual(["a", "b", "c"]);
  });

  it("chains sha256(prev ‖ stored bytes) from the genesis hash", async () => {
    const s = conv();
    await store.append(s, 0, [ev("a"), ev("b")], "x1");
    await store.append(s, 2, [ev("c")], "x2");
    const raw = await r.client.xrangeBuffer(streamKeys(s, PARTITIONS).stream, "-", "+");
    let h = GENESIS_HASH;
    for (const [, fields] of raw) {
      h = chainHash(h, fields[1] as Buffer);
      expect((fields[3] as Buffer).toString()).toBe(h);
    }
    expect((await store.head(s)).hash).toBe(h);
  });

  it("reads with an exclusive from, inclusive to and a limit", async () => {
    const s = conv();
    const { offsets } = await store.append(s, 0, ["a", "b", "c", "d", "e"].map((t) => ev(t)), "r1");
    const types = async (o: Parameters<EventStore["read"]>[1]) => (await store.read(s, o)).map((e) => e.type);
    expect(await types({ from: "0" })).toEqual(["a", "b", "c", "d", "e"]);
    expect(await types({ from: offsets[1] })).toEqual(["c", "d", "e"]);
    expect(await types({ from: offsets[0], to: offsets[2] })).toEqual(["b", "c"]);
    expect(await types({ from: offsets[0], limit: 2 })).toEqual(["b", "c"]);
    expect(await types({ from: offsets[4] })).toEqual([]);
    await expect(store.read(s, { from: "nope" })).rejects.toBeInstanceOf(TributaryError);
  });

  it("writes every event to the partition log with the stream key, offset and the same bytes", async () => {
    const s = conv();
    const sk = streamKeys(s, PARTITIONS);
    const before = await r.client.xrevrange(keys.log(sk.partition), "+", "-", "COUNT", 1);
    const res = await store.append(s, 0, [ev("a"), ev("b")], "l1");
    const log = await store.readLog(sk.partition, before[0] ? { from: before[0][0] } : {});
    const mine = log.filter((l) => l.event.stream.id === s.id);
    expect(mine.map((l) => [l.event.offset, l.event.version, l.event.type, l.event.hash])).toEqual([
      [res.offsets[0], 1, "a", expect.any(String)],
      [res.offsets[1], 2, "b", res.hash],
    ]);
    const streamBytes = await r.client.xrangeBuffer(sk.stream, "-", "+");
    const logBytes = await r.client.xrangeBuffer(keys.log(sk.partition), mine[0]?.logOffset ?? "-", "+", "COUNT", 1);
    expect(logBytes[0]?.[1][5]).toEqual(streamBytes[0]?.[1][1]);
  });

  it("another writer moving the stream makes a stale expected version a CONFLICT", async () => {
    const s = conv();
    await store.append(s, 0, [ev("a")], "h1");
    // Another store instance (another process) appends: our cache still says version 1.
    const other = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
    await other.append(s, 1, [ev("b")], "h2");
    await expect(store.append(s, 1, [ev("x")], "h3")).rejects.toBeInstanceOf(VersionConflictError);
    const ok = await store.append(s, 2, [ev("c")], "h4");
    expect(ok.toVersion).toBe(3);
  });

  it("recovers when its cached head hash is stale at the same version (stream rebuilt behind its back)", async () => {
    const s = conv();
    const sk = streamKeys(s, PARTITIONS);
    await store.append(s, 0, [ev("a")], "s1");
    await r.client.del(sk.stream, sk.meta);
    const other = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
    const rebuilt = await other.append(s, 0, [ev("different")], "s2");
    const res = await store.append(s, 1, [ev("b")], "s3");
    expect(res.toVersion).toBe(2);
    const events = await store.read(s);
    expect(events.map((e) => e.type)).toEqual(["different", "b"]);
    expect(chainHash(rebuilt.hash, (await r.client.xrangeBuffer(sk.stream, "-", "+"))[1]?.[1][1] as Buffer)).toBe(res.hash);
  });

  it("with expectedHash, a stream rebuilt to the same version under another head refuses with CONFLICT", async () => {
    const s = conv();
    const sk = streamKeys(s, PARTITIONS);
    const first = await store.append(s, 0, [ev("a")], "e1");
    await r.client.del(sk.stream, sk.meta);
    const other = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
    const rebuilt = await other.append(s, 0, [ev("different")], "e2");
    await expect(store.append(s, 1, [ev("b")], "e3", { expectedHash: first.hash })).rejects.toMatchObject({ code: "CONFLICT", expected: 1, actual: 1 });
    expect((await store.read(s)).map((e) => e.type)).toEqual(["different"]);
    // The head the stream really has is accepted.
    expect((await store.append(s, 1, [ev("b")], "e3", { expectedHash: rebuilt.hash })).toVersion).toBe(2);
  });

  it("wait-replica durability fails with UNAVAILABLE when no replica acknowledges, and a retry is a duplicate", async () => {
    const s = conv();
    const durable = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000, durability: "wait-replica", replicaTimeoutMs: 50 });
    const replicas = Number(/connected_slaves:(\d+)/.exec(await r.client.info("replication"))?.[1] ?? "0");
    if (mode === "single" && replicas > 0) return; // a test Redis with replicas would acknowledge
    const err = await durable.append(s, 0, [ev("a")], "w1").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "UNAVAILABLE" });
    // The append is on the primary: the retry answers the first result (and times out again on WAIT).
    const retry = await durable.append(s, 0, [ev("a")], "w1").catch((e: unknown) => e);
    expect(retry).toMatchObject({ code: "UNAVAILABLE" });
    expect((await store.read(s)).map((e) => e.type)).toEqual(["a"]);
  });
});
