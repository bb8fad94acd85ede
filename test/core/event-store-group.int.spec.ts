import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditStream } from "../../core/audit/walker.js";
import { GENESIS_HASH, chainHash } from "../../core/chain.js";
import type { NewEvent } from "../../core/envelope.js";
import { TributaryError, VersionConflictError } from "../../core/errors.js";
import type { AppendResult } from "../../core/event-store.js";
import { keys, streamKeys, type StreamRef } from "../../core/keys.js";
import { createRedisEntrySource, type RedisEntrySource } from "../../core/redis/entry-source.js";
import { groupCall, type GroupAppend } from "../../core/redis/append-group.js";
import { APPEND_GROUP_SCRIPT } from "../../core/redis/append-group-call.js";
import { createRedisEventStore, type RedisEventStore } from "../../core/redis/event-store.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";
import { conversationInPartition } from "../support/streams.js";

/**
 * Group commit (docs/event-store.md, "Group commit"), on a single Redis and on the 3-master
 * cluster: appends issued in the same tick share one script call (of any partitions on a single
 * Redis, of one partition on a cluster), and an append
 * the script refuses (CONFLICT, a duplicate, a stream that refuses the XADD) changes nothing for the
 * others of its call.
 */
const PARTITIONS = 4;
const at = "2026-11-22T00:00:00.000Z";
const ev = (type: string, data: unknown = {}): NewEvent => ({ type, data, at });

const convIn = (p: number): StreamRef => conversationInPartition(p, PARTITIONS, "g");

const settle = (p: Promise<AppendResult>): Promise<AppendResult | Error> => p.catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));

describe.each(REDIS_MODES)("event store group commit (%s)", (mode) => {
  let r: TestRedis;
  let store: RedisEventStore;
  let source: RedisEntrySource;
  beforeAll(async () => {
    r = await testRedis(mode);
    // One call in flight: these cases pin which appends share a call (two in flight split bursts; see below).
    store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000, groupCommit: { maxInFlight: 1 } });
    source = createRedisEntrySource(r.client, PARTITIONS);
  });
  afterAll(() => r.cleanup());

  it("refused appends in a group (CONFLICT, duplicates, a refusing stream) leave the others' results as they would be alone", async () => {
    const [X, Y, Z, W, B] = [1, 1, 1, 1, 1].map(convIn) as [StreamRef, StreamRef, StreamRef, StreamRef, StreamRef];
    const V = convIn(2);
    const x1 = await store.append(X, 0, [ev("x1")], "x1");
    const z1 = await store.append(Z, 0, [ev("z1")], "z1");
    // Y moved by another writer: our store's cache knows nothing of it.
    await createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 }).append(Y, 0, [ev("y1")], "y1");
    // B's stream key holds a string: Redis refuses the XADD (WRONGTYPE).
    await r.client.set(streamKeys(B, PARTITIONS).stream, "not a stream");

    const before = { ...(store.groupCommitStats ?? { calls: 0, items: 0, largest: 0 }) };
    // All issued in one tick, so partition 1's seven appends share one script call (with h's on a single Redis).
    const burst = [
      store.append(X, 1, [ev("a1"), ev("a2")], "x2"), // a: appended
      store.append(Y, 0, [ev("b")], "y2"), // b: CONFLICT (actual 1)
      store.append(Z, 0, [ev("c")], "z1"), // c: duplicate of z1 (dedupe first, stale version or not)
      store.append(X, 1, [ev("d")], "x3"), // d: CONFLICT (a moved X to 3 earlier in the same call)
      store.append(X, 1, [ev("e")], "x2"), // e: duplicate of a, decided inside the same call
      store.append(B, 0, [ev("f")], "b1"), // f: refused by Redis
      store.append(W, 0, [ev("g")], "w1"), // g: appended
      store.append(V, 0, [ev("h")], "v1"), // h: another partition: its own call on a cluster
    ].map(settle);
    const [a, b, c, d, e, f, g, h] = await Promise.all(burst);
    const after = store.groupCommitStats;
    expect(after).toBeDefined();
    // On a cluster one call per partition (slot); a single Redis takes both partitions in one call.
    expect((after?.calls ?? 0) - before.calls).toBe(mode === "cluster" ? 2 : 1);
    expect((after?.items ?? 0) - before.items).toBe(8);
    expect(after?.largest).toBeGreaterThanOrEqual(7);

    // a and g: exactly what they would be alone.
    const xs = await store.read(X);
    expect(xs.map((x) => x.type)).toEqual(["x1", "a1", "a2"]);
    expect(a).toEqual({ duplicate: false, fromVersion: 2, toVersion: 3, offsets: [xs[1]?.offset, xs[2]?.offset], hash: xs[2]?.hash });
    expect(xs[2]?.hash).toBe(chainHash(chainHash(x1.hash, await rawBytes(X, 1)), await rawBytes(X, 2)));
    const ws = await store.read(W);
    expect(g).toEqual({ duplicate: false, fromVersion: 1, toVersion: 1, offsets: [ws[0]?.offset], hash: chainHash(GENESIS_HASH, await rawBytes(W, 0)) });
    expect(h).toMatchObject({ duplicate: false, fromVersion: 1, toVersion: 1 });

    expect(b).toBeInstanceOf(VersionConflictError);
    expect(b).toMatchObject({ code: "CONFLICT", expected: 0, actual: 1 });
    expect(c).toEqual({ ...z1, duplicate: true });
    expect(d).toBeInstanceOf(VersionConflictError);
    expect(d).toMatchObject({ expected: 1, actual: 3 });
    expect(e).toEqual({ ...(a as AppendResult), duplicate: true });
    expect(f).toBeInstanceOf(TributaryError);
    expect(String((f as Error).message)).toMatch(/refused by Redis: WRONGTYPE/);

    // Refused appends wrote nothing: no events, no meta, no dedupe record.
    expect((await store.read(Y)).map((y) => y.type)).toEqual(["y1"]);
    expect((await store.read(Z)).map((z) => z.type)).toEqual(["z1"]);
    const bk = streamKeys(B, PARTITIONS);
    expect(await r.client.get(bk.stream)).toBe("not a stream");
    expect(await r.client.exists(bk.meta, keys.idem(bk.partition, `conversation:${B.id}:b1`))).toBe(0);
    // The partition log got exactly a's two events and g's one from this call, in call order.
    const log = (await store.readLog(1)).filter((l) => [X.id, W.id, Y.id, Z.id, B.id].includes(l.event.stream.id));
    expect(log.map((l) => l.event.type)).toEqual(["x1", "z1", "y1", "a1", "a2", "g"]);
    // Offsets unique across the call; the chain of every stream verifies.
    const offsets = [...xs, ...ws].map((x) => x.offset);
    expect(new Set(offsets).size).toBe(offsets.length);
    for (const s of [X, Y, Z, W, V]) {
      const audit = await auditStream({ ref: s, key: source.keyOf(s) }, { live: source, head: source.head });
      expect(audit.break).toBeUndefined();
    }
    // A refused append does not poison its stream for later: B works once it is a stream again.
    await r.client.del(bk.stream);
    expect(await store.append(B, 0, [ev("f")], "b1")).toMatchObject({ duplicate: false, fromVersion: 1 });
  });

  it("a retry carrying the stream's current version answers its first result, next to others in its call", async () => {
    const [S, T] = [2, 2].map(convIn) as [StreamRef, StreamRef];
    const s1 = await store.append(S, 0, [ev("s1"), ev("s2")], "s");
    // Re-decided with the same command id at the version the first append produced: the version
    // check passes, so only the dedupe record can tell it is a retry.
    const calls = store.groupCommitStats?.calls ?? 0;
    const [again, t1] = await Promise.all([store.append(S, 2, [ev("other")], "s"), store.append(T, 0, [ev("t1")], "t")]);
    expect((store.groupCommitStats?.calls ?? 0) - calls).toBe(1);
    expect(again).toEqual({ ...s1, duplicate: true });
    expect(t1).toMatchObject({ duplicate: false, fromVersion: 1, toVersion: 1 });
    expect((await store.read(S)).map((e) => e.type)).toEqual(["s1", "s2"]);
    expect((await store.read(T)).map((e) => e.type)).toEqual(["t1"]);
    expect(await store.head(S)).toMatchObject({ version: 2, hash: s1.hash });
  });

  it("same-tick appends to one partition go out as one call; a lone append as a call of its own", async () => {
    const streams = Array.from({ length: 20 }, () => convIn(3));
    const before = store.groupCommitStats?.calls ?? 0;
    const res = await Promise.all(streams.map((s, i) => store.append(s, 0, [ev("t", { i })], `c${i}`)));
    expect((store.groupCommitStats?.calls ?? 0) - before).toBe(1);
    expect(res.every((x) => !x.duplicate && x.fromVersion === 1)).toBe(true);
    expect(new Set(res.map((x) => x.offsets[0])).size).toBe(20);
    const lone = await store.append(streams[0] as StreamRef, 1, [ev("u")], "lone");
    expect(lone.toVersion).toBe(2);
    expect((store.groupCommitStats?.calls ?? 0) - before).toBe(2);
  });

  it("two calls in flight: a same-tick burst splits into two equal calls, answered as one call would answer it", async () => {
    // The default on a single Redis with local durability; set explicitly so the cluster runs it too.
    const two = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000, groupCommit: { maxInFlight: 2 } });
    const streams = Array.from({ length: 10 }, () => convIn(0));
    const first = await two.append(streams[0] as StreamRef, 0, [ev("first")], "f0");
    const before = { ...(two.groupCommitStats ?? { calls: 0, items: 0, largest: 0 }) };
    const out = await Promise.all(
      [
        ...streams.map((s, i) => two.append(s, i === 0 ? 1 : 0, [ev("t", { i })], `c${i}`)),
        two.append(streams[0] as StreamRef, 0, [ev("again")], "f0"), // duplicate of `first`, in the second call
        two.append(streams[1] as StreamRef, 0, [ev("late")], "x"), // CONFLICT: the first call moved it
      ].map(settle),
    );
    // 12 appends with both slots free: two calls of 6, the second run by Redis after the first.
    expect((two.groupCommitStats?.calls ?? 0) - before.calls).toBe(2);
    expect(two.groupCommitStats?.largest).toBe(6);
    const appended = out.slice(0, 10) as AppendResult[];
    for (const [i, a] of appended.entries()) expect(a).toMatchObject({ duplicate: false, fromVersion: i === 0 ? 2 : 1 });
    expect(out[10]).toEqual({ ...first, duplicate: true });
    expect(out[11]).toBeInstanceOf(VersionConflictError);
    expect(out[11]).toMatchObject({ expected: 0, actual: 1 });
    const offsets = appended.map((a) => a.offsets[0]);
    expect(new Set(offsets).size).toBe(10);
    for (const s of streams) {
      const audit = await auditStream({ ref: s, key: source.keyOf(s) }, { live: source, head: source.head });
      expect(audit.break).toBeUndefined();
    }
  });

  it("appends of several partitions: one call on a single Redis (each partition's log, ids and sequence its own), one per partition on a cluster", async () => {
    // Two streams in each partition; one already has an event, so the call mixes fresh appends,
    // a CONFLICT and a duplicate across partitions.
    const S = [0, 0, 1, 1, 2, 2, 3, 3].map(convIn);
    const [s0, s1, s2, , s4] = S as [StreamRef, StreamRef, StreamRef, StreamRef, StreamRef];
    const first = await store.append(s2, 0, [ev("first")], "f");
    const idseq0 = await Promise.all([0, 1, 2, 3].map((p) => r.client.get(keys.idseq(p))));
    const before = store.groupCommitStats?.calls ?? 0;
    const out = await Promise.all(
      [
        ...S.map((s, i) => store.append(s, s === s2 ? 1 : 0, [ev("n", { i }), ev("m", { i })], `c${i}`)),
        store.append(s2, 0, [ev("again")], "f"), // duplicate of `first`, in partition 1
        store.append(s0, 0, [ev("late")], "x"), // CONFLICT: the first append of the call moved s0
        store.append(s4, 0, [ev("n")], "c4"), // duplicate of s4's append earlier in this call
      ].map(settle),
    );
    expect((store.groupCommitStats?.calls ?? 0) - before).toBe(mode === "cluster" ? 4 : 1);
    const appended = out.slice(0, 8) as AppendResult[];
    for (const [i, a] of appended.entries()) expect(a).toMatchObject({ duplicate: false, fromVersion: S[i] === s2 ? 2 : 1, toVersion: S[i] === s2 ? 3 : 2 });
    expect(out[8]).toEqual({ ...first, duplicate: true });
    expect(out[9]).toBeInstanceOf(VersionConflictError);
    expect(out[9]).toMatchObject({ expected: 0, actual: 2 });
    expect(out[10]).toEqual({ ...appended[4], duplicate: true });
    for (const [i, s] of S.entries()) {
      const p = streamKeys(s, PARTITIONS).partition;
      const evs = await store.read(s);
      expect(evs.map((e) => e.type)).toEqual(s === s2 ? ["first", "n", "m"] : ["n", "m"]);
      // The call's ids: seq mod P is the stream's partition, ids increase within the stream.
      for (const e of evs) expect(Number(e.offset.split("-")[1]) % PARTITIONS).toBe(p);
      expect(evs.map((e) => e.offset).slice(-2)).toEqual(appended[i]?.offsets);
      const audit = await auditStream({ ref: s, key: source.keyOf(s) }, { live: source, head: source.head });
      expect(audit.break).toBeUndefined();
    }
    for (const p of [0, 1, 2, 3]) {
      // Each partition's log holds exactly its own streams' events of the call, in call order.
      const mine = S.filter((s) => streamKeys(s, PARTITIONS).partition === p).map((s) => s.id);
      const log = (await store.readLog(p)).filter((l) => mine.includes(l.event.stream.id) && l.event.type !== "first");
      expect(log.map((l) => `${l.event.stream.id}:${l.event.type}`)).toEqual(mine.flatMap((id) => [`${id}:n`, `${id}:m`]));
      // Each partition's id sequence moved on, and names the last id given out in that partition.
      const seq = await r.client.get(keys.idseq(p));
      expect(seq).not.toBe(idseq0[p]);
      const [ms, k] = (seq ?? "").split(":").map(Number) as [number, number];
      const lastOffset = log.at(-1)?.event.offset ?? "";
      expect(`${ms}-${k * PARTITIONS + p}`).toBe(lastOffset);
    }
  });

  it("the dedupe record of a grouped append expires after IDEM_TTL (0 = kept)", async () => {
    const ttlStore = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 45_000.9 });
    const keep = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 0 });
    const [a, b] = [convIn(1), convIn(2)];
    await Promise.all([ttlStore.append(a, 0, [ev("t")], "ttl"), keep.append(b, 0, [ev("t")], "keep")]);
    const ttl = await r.client.pttl(keys.idem(1, `conversation:${a.id}:ttl`));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(45_000);
    expect(await r.client.pttl(keys.idem(2, `conversation:${b.id}:keep`))).toBe(-1);
  });

  it("perPartition: true groups per partition on a single Redis too", async () => {
    const own = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000, groupCommit: { perPartition: true } });
    await Promise.all([0, 1, 2, 3, 1].map((p, i) => own.append(convIn(p), 0, [ev("t")], `c${i}`)));
    expect(own.groupCommitStats).toMatchObject({ calls: 4, items: 5 });
  });

  it("caps a call at maxAppends: 150 same-tick appends of one partition take ceil(150 / 64) calls", async () => {
    // One call in flight: with two, a remainder may be split once both calls returned (22 → 11 + 11).
    const capped = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000, groupCommit: { maxAppends: 64, maxInFlight: 1 } });
    const streams = Array.from({ length: 150 }, () => convIn(0));
    const res = await Promise.all(streams.map((s) => capped.append(s, 0, [ev("t")], "c")));
    expect(res.every((x) => x.toVersion === 1)).toBe(true);
    expect(capped.groupCommitStats).toEqual({ calls: 3, items: 150, largest: 64 });
  });

  it("wait-replica covers every append of a group: each answers UNAVAILABLE without a replica, retries are duplicates", async () => {
    const replicas = Number(/connected_slaves:(\d+)/.exec(await r.client.info("replication"))?.[1] ?? "0");
    if (mode === "single" && replicas > 0) return; // a test Redis with replicas would acknowledge
    const durable = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000, durability: "wait-replica", replicaTimeoutMs: 50 });
    const [s1, s2, s3] = [2, 2, 2].map(convIn) as [StreamRef, StreamRef, StreamRef];
    await store.append(s3, 0, [ev("first")], "s3");
    const out = await Promise.all([durable.append(s1, 0, [ev("a")], "w1"), durable.append(s2, 0, [ev("b")], "w2"), durable.append(s3, 0, [ev("c")], "w3")].map(settle));
    expect(durable.groupCommitStats?.calls).toBe(1);
    expect(out[0]).toMatchObject({ code: "UNAVAILABLE" });
    expect(out[1]).toMatchObject({ code: "UNAVAILABLE" });
    expect(out[2]).toBeInstanceOf(VersionConflictError); // a refusal stays a refusal
    expect((await store.head(s1)).version).toBe(1);
    const retry = await settle(durable.append(s1, 0, [ev("a")], "w1"));
    expect(retry).toMatchObject({ code: "UNAVAILABLE" });
    expect((await store.head(s1)).version).toBe(1);
  });

  async function rawBytes(s: StreamRef, i: number): Promise<Buffer> {
    const raw = await r.client.xrangeBuffer(streamKeys(s, PARTITIONS).stream, "-", "+");
    return raw[i]?.[1][1] as Buffer;
  }
  it("the script reads its number arguments as before: other decimal texts ('01', '1.0') give the same outcomes as the writer's own", async () => {
    // append-group.lua skips `tonumber` for the texts the writer sends ("1", the stored version);
    // any other text of the same number must still be read as that number.
    const [X, Y] = [convIn(1), convIn(1)] as [StreamRef, StreamRef];
    const one = (ref: StreamRef, expectedVersion: number, prevHash: string, tag: string): GroupAppend => {
      const sk = streamKeys(ref, PARTITIONS);
      const bytes = Buffer.from(tag);
      return { partition: 1, stream: sk.stream, meta: sk.meta, idem: keys.idem(1, `${ref.kind}:${ref.id}:${tag}`), expectedVersion, prevHash, events: [{ bytes, hash: chainHash(prevHash, bytes) }] };
    };
    const a = one(X, 0, GENESIS_HASH, "a");
    const b = one(X, 1, a.events[0]?.hash as string, "b");
    const c = one(Y, 0, GENESIS_HASH, "c");
    const d = one(X, 1, b.events[0]?.hash as string, "d");
    const shared = { idemTtlMs: 60_000, partitions: PARTITIONS, logs: [0, 1, 2, 3].map((p) => keys.log(p)), idseqs: [0, 1, 2, 3].map((p) => keys.idseq(p)) };
    const { keys: ks, args } = groupCall(shared, [a, b, c, d]);
    // Per append: g, expected, prev, TTL, n, bytes, hash — after TTL, P, G, p, count.
    const texts = args.map((x) => (typeof x === "number" ? String(x) : x));
    texts.splice(5, 5, "01", "0.0", a.prevHash, "60000.0", "1.0"); // a: g, expected, TTL and n in other texts
    texts.splice(12, 2, "1", "1"); // b: the writer's own texts
    texts.splice(19, 5, "1.0", "00", c.prevHash, "060000", "01"); // c
    texts.splice(26, 2, "1", "1.0"); // d: a stale expected version in another text → CONFLICT
    const reply = (await APPEND_GROUP_SCRIPT.send(r.client, ks, texts)) as unknown[][];
    expect(reply.map((x) => x[0])).toEqual([0, 0, 0, -1]);
    expect(reply[3]).toEqual([-1, 2]);
    expect(await store.head(X)).toMatchObject({ version: 2, hash: b.events[0]?.hash, lastOffset: reply[1]?.[1] });
    expect(await store.head(Y)).toMatchObject({ version: 1, hash: c.events[0]?.hash, lastOffset: reply[2]?.[1] });
    expect(await r.client.xlen(streamKeys(X, PARTITIONS).stream)).toBe(2);
    // The TTL texts were read as 60000 ms, too.
    for (const g of [a, c]) expect(await r.client.pttl(g.idem)).toBeGreaterThan(50_000);
  });
});
