import { subscribe, unsubscribe } from "node:diagnostics_channel";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { compareOffsets, type Envelope } from "../../core/envelope.js";
import type { EventStore } from "../../core/event-store.js";
import { streamKeys } from "../../core/keys.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileBlobStore } from "../../core/blob/file-store.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import { createArchiver } from "../../core/redis/archiver.js";
import { Fanout, olderEventsFrom } from "../../edge/fanout/index.js";
import { READ_CHANNEL, type ReadRound } from "../../edge/fanout/partition-reader.js";
import { REDIS_MODES, masters, testRedis, type TestRedis } from "../support/redis.js";
import { Appender, RecordingSink, TopicSink, Topics, newConversationId, offsetEncoder } from "./fanout-support.js";

const PARTITIONS = 4;
const waitFor = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 20_000, interval: 10 });

describe.each(REDIS_MODES)("fan-out on %s Redis", (mode) => {
  let r: TestRedis;
  let store: EventStore;
  let topics: Topics;
  let fanout: Fanout;

  beforeAll(async () => {
    r = await testRedis(mode);
    store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
    topics = new Topics();
    fanout = new Fanout({ redis: r.client, partitions: PARTITIONS, publish: topics.publish, blockMs: 2000 });
    fanout.registerEncoder("off", offsetEncoder);
    fanout.registerEncoder("json", (env) => JSON.stringify(env));
  });
  afterAll(async () => {
    await fanout.stop();
    await r.cleanup();
  });

  it("delivers live events to two listeners and a topic sink in the same order, each once", async () => {
    const app = new Appender(store, newConversationId());
    await app.append(3);
    const a = new RecordingSink("off");
    const b = new RecordingSink("json");
    const t = new TopicSink("off", topics);
    const att = await Promise.all([fanout.attach(app.conversationId, null, a), fanout.attach(app.conversationId, null, b), fanout.attach(app.conversationId, null, t)]);
    for (const x of att) expect(x.offset).toBe(app.offsets[2]);
    expect(t.joined).toBe(fanout.topic(app.conversationId, "off"));
    const live = await app.append(25, 4);
    await waitFor(() => expect(t.frames.length).toBe(25));
    await waitFor(() => expect(b.envs.length).toBe(25));
    expect(a.offsets).toEqual(live);
    expect(b.envs.map((e) => e.offset)).toEqual(live);
    expect(t.frames).toEqual(live);
    // The JSON encoder got real envelopes.
    const env = JSON.parse(b.frames[0] as string) as Envelope;
    expect(env).toMatchObject({ conversationId: app.conversationId, offset: live[0], version: 4, type: "assistant.delta" });
    for (const x of att) x.detach();
    await waitFor(() => expect(fanout.stats().conversations).toBe(0));
  });

  it("answers offset '0' for an empty conversation and follows it from its first event", async () => {
    const app = new Appender(store, newConversationId());
    const s = new RecordingSink("off");
    const att = await fanout.attach(app.conversationId, "0", s);
    expect(att.offset).toBe("0");
    expect(await att.live).toBe("live");
    await app.append(5);
    await waitFor(() => expect(s.offsets).toEqual(app.offsets));
    att.detach();
  });

  it("resume from every cut gives exactly the events after it, in order, once — with appends racing the attach", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        async (cut, racing, batch, topicSink) => {
          const app = new Appender(store, newConversationId());
          await app.append(20, 5);
          const from = cut === 0 ? "0" : (app.offsets[cut - 1] as string);
          // A live listener already present makes the follower exist before the attach races.
          const witness = new RecordingSink("off");
          const w = await fanout.attach(app.conversationId, null, witness);
          const sink = topicSink ? new TopicSink("off", topics) : new RecordingSink("off");
          const appending = app.append(racing, batch);
          const att = await fanout.attach(app.conversationId, from, sink);
          await appending;
          const after = app.offsets.slice(cut);
          await waitFor(() => expect(sink.frames.length).toBeGreaterThanOrEqual(after.length));
          await waitFor(() => expect(witness.offsets.length).toBe(racing));
          // One more live event proves the sink stays joined after the hand-over.
          await app.append(1);
          const all = app.offsets.slice(cut);
          await waitFor(() => expect(sink.frames).toEqual(all));
          att.detach();
          w.detach();
        },
      ),
      { numRuns: mode === "single" ? 25 : 12 },
    );
  });

  it("random interleavings of appends, attaches and detaches: every sink gets exactly the events after its offset, in order", async () => {
    type Op =
      | { t: "append"; c: number; n: number }
      | { t: "attach"; c: number; from: "live" | "zero" | number; topic: boolean }
      | { t: "detach"; k: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ t: fc.constant("append" as const), c: fc.nat(2), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({
        t: fc.constant("attach" as const),
        c: fc.nat(2),
        from: fc.oneof(fc.constant("live" as const), fc.constant("zero" as const), fc.double({ min: 0, max: 1, noNaN: true })),
        topic: fc.boolean(),
      }),
      fc.record({ t: fc.constant("detach" as const), k: fc.nat(20) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const apps = [0, 1, 2].map(() => new Appender(store, newConversationId()));
        const subs: Array<{ app: Appender; from: string; sink: RecordingSink | TopicSink; detach(): void; detached: boolean }> = [];
        const pending: Array<Promise<unknown>> = [];
        // One writer per conversation (I3): appends to one stream run one after another.
        const chains = apps.map((): Promise<unknown> => Promise.resolve());
        for (const o of ops) {
          if (o.t === "append") {
            const next = (chains[o.c] as Promise<unknown>).then(() => (apps[o.c] as Appender).append(o.n));
            chains[o.c] = next;
            pending.push(next);
          }
          else if (o.t === "attach") {
            const app = apps[o.c] as Appender;
            // Appends still in flight race with this attach on purpose; `from` is an offset already known.
            const known = app.offsets;
            const from =
              o.from === "live" ? null : o.from === "zero" || known.length === 0 ? "0" : (known[Math.floor(o.from * known.length)] ?? known.at(-1) ?? "0");
            const sink = o.topic ? new TopicSink("off", topics) : new RecordingSink("off");
            const att = await fanout.attach(app.conversationId, from, sink);
            const detach = () => {
              att.detach();
              if (sink instanceof TopicSink) sink.leave();
            };
            subs.push({ app, from: from ?? att.offset, sink, detach, detached: false });
          } else {
            const sub = subs[o.k % Math.max(1, subs.length)];
            if (sub && !sub.detached) {
              sub.detach();
              sub.detached = true;
            }
          }
        }
        await Promise.all(pending);
        try {
          for (const sub of subs) {
            const expected = sub.app.offsets.filter((x) => compareOffsets(x, sub.from) > 0);
            if (sub.detached) {
              // Whatever arrived before the detach is a prefix of the right sequence.
              expect(expected.slice(0, sub.sink.frames.length)).toEqual(sub.sink.frames);
            } else {
              await waitFor(() => expect(sub.sink.frames).toEqual(expected));
            }
          }
        } finally {
          // Also after a failed run, so shrinking starts from a clean fan-out.
          for (const sub of subs) if (!sub.detached) sub.detach();
        }
        await waitFor(() => expect(fanout.stats().conversations).toBe(0));
      }),
      { numRuns: mode === "single" ? 30 : 12 },
    );
  });

  it("a sink resuming from an offset ahead of this node gets only the events after it (topic joins once passed)", async () => {
    for (const kind of ["topic", "listener"] as const) {
      const app = new Appender(store, newConversationId());
      await app.append(2);
      // An offset a few ms ahead of the stream, as a client served by a faster node may present.
      const ms = Number((app.offsets[1] as string).split("-")[0]);
      const from = `${ms + 5}-0`;
      const s = kind === "topic" ? new TopicSink("off", topics) : new RecordingSink("off");
      const att = await fanout.attach(app.conversationId, from, s);
      expect(att.offset).toBe(app.offsets[1]);
      expect(await att.live).toBe("live");
      // Append until the stream has passed `from`, then a little more.
      const isAfter = (o: string) => compareOffsets(o, from) > 0;
      while (!app.offsets.some(isAfter)) await app.append(1);
      await app.append(3);
      const expected = app.offsets.filter(isAfter);
      await waitFor(() => expect(s.frames).toEqual(expected));
      if (s instanceof TopicSink) expect(s.joined).toBe(fanout.topic(app.conversationId, "off"));
      att.detach();
    }
  });

  it("drops a listener over its bound without holding up the others; it resumes exactly from its last offset", async () => {
    const app = new Appender(store, newConversationId());
    const slow = new RecordingSink("off", 5);
    const fast = new RecordingSink("off");
    const as = await fanout.attach(app.conversationId, null, slow);
    const af = await fanout.attach(app.conversationId, null, fast);
    await app.append(30, 3);
    await waitFor(() => expect(fast.offsets).toEqual(app.offsets));
    expect(slow.dropped).toBe(true);
    expect(slow.offsets).toEqual(app.offsets.slice(0, 5));
    expect(fanout.stats().dropped).toBeGreaterThanOrEqual(1);
    // Resume by offset, as a reconnecting client would.
    const again = new RecordingSink("off");
    const ar = await fanout.attach(app.conversationId, slow.offsets[4] as string, again);
    await app.append(2);
    await waitFor(() => expect(again.offsets).toEqual(app.offsets.slice(5)));
    as.detach();
    af.detach();
    ar.detach();
  });

  it("drops a client that is over its bound during catch-up", async () => {
    const app = new Appender(store, newConversationId());
    await app.append(12, 4);
    const slow = new RecordingSink("off", 3);
    const att = await fanout.attach(app.conversationId, "0", slow);
    expect(await att.live).toBe("dropped");
    expect(slow.dropped).toBe(true);
    expect(slow.offsets).toEqual(app.offsets.slice(0, 3));
  });

  it("paces catch-up to a client that reports backpressure, and drops one that stalls", async () => {
    const app = new Appender(store, newConversationId());
    await app.append(30, 6);
    const releases: Array<(ok: boolean) => void> = [];
    const paced = new RecordingSink("off");
    // Backpressured after every 5th frame until the test lets it drain.
    const sink = Object.assign(paced, {
      whenWritable: (): Promise<boolean> | undefined =>
        paced.frames.length % 5 === 0 ? new Promise<boolean>((res) => releases.push(res)) : undefined,
    });
    const att = await fanout.attach(app.conversationId, "0", sink);
    for (let n = 5; n <= 30; n += 5) {
      await waitFor(() => expect(releases.length).toBe(n / 5));
      // While paused nothing more is delivered.
      expect(paced.frames.length).toBe(n);
      releases[n / 5 - 1]?.(true);
    }
    expect(await att.live).toBe("live");
    await app.append(2);
    await waitFor(() => expect(paced.offsets).toEqual(app.offsets));
    att.detach();

    const stalled = new RecordingSink("off");
    const st = Object.assign(stalled, { whenWritable: () => Promise.resolve(false) });
    const att2 = await fanout.attach(app.conversationId, "0", st);
    expect(await att2.live).toBe("dropped");
    expect(stalled.dropped).toBe(true);
    expect(stalled.offsets).toEqual(app.offsets.slice(0, 1));
  });

  it("two fan-outs on one Redis (two edge nodes) deliver the same events in the same order", async () => {
    const app = new Appender(store, newConversationId());
    const other = new Fanout({ redis: r.duplicate(), partitions: PARTITIONS });
    other.registerEncoder("off", offsetEncoder);
    try {
      const a = new RecordingSink("off");
      const b = new RecordingSink("off");
      const aa = await fanout.attach(app.conversationId, null, a);
      const ab = await other.attach(app.conversationId, null, b);
      await app.append(40, 3);
      await waitFor(() => expect(a.offsets).toEqual(app.offsets));
      await waitFor(() => expect(b.offsets).toEqual(app.offsets));
      aa.detach();
      ab.detach();
    } finally {
      await other.stop();
    }
  });

  it("follows many conversations of one partition with one read loop and wakes it for a new one", async () => {
    const apps = Array.from({ length: 6 }, () => new Appender(store, newConversationId()));
    const sinks = apps.map(() => new RecordingSink("off"));
    const atts = [];
    for (const [i, app] of apps.entries()) {
      atts.push(await fanout.attach(app.conversationId, null, sinks[i] as RecordingSink));
      await app.append(2);
    }
    for (const [i, app] of apps.entries()) await waitFor(() => expect((sinks[i] as RecordingSink).offsets).toEqual(app.offsets));
    expect(fanout.stats().partitions).toBeLessThanOrEqual(PARTITIONS);
    for (const a of atts) a.detach();
  });

  it("replays events only the archive holds through the olderEvents seam, then Redis, then live", async () => {
    const app = new Appender(store, newConversationId());
    await app.append(10, 2);
    const key = streamKeys({ kind: "conversation", id: app.conversationId }, PARTITIONS).stream;
    const archived = (await store.read({ kind: "conversation", id: app.conversationId })).slice(0, 6).map(
      (e): Envelope => ({ conversationId: app.conversationId, offset: e.offset, version: e.version, type: e.type, at: e.at, data: e.data }),
    );
    // Trim the archived prefix from Redis, as the archiver does.
    await r.client.xtrim(key, "MINID", app.offsets[6] as string);
    const calls: string[] = [];
    const withArchive = new Fanout({
      redis: r.client,
      partitions: PARTITIONS,
      olderEvents: async function* (id, from) {
        calls.push(from);
        for (const e of archived) if (e.conversationId === id) yield e;
      },
    });
    withArchive.registerEncoder("off", offsetEncoder);
    try {
      for (const cut of [0, 3, 6, 8]) {
        const s = new RecordingSink("off");
        const att = await withArchive.attach(app.conversationId, cut === 0 ? "0" : (app.offsets[cut - 1] as string), s);
        expect(await att.live).toBe("live");
        expect(s.offsets).toEqual(app.offsets.slice(cut));
        att.detach();
      }
      // Offsets still in Redis never touch the archive.
      expect(calls).toEqual(["0", app.offsets[2], app.offsets[5]]);
      const s = new RecordingSink("off");
      const att = await withArchive.attach(app.conversationId, "0", s);
      await att.live;
      await app.append(2);
      await waitFor(() => expect(s.offsets).toEqual(app.offsets));
      expect(s.envs.map((e) => e.version)).toEqual(app.offsets.map((_, i) => i + 1));
    } finally {
      await withArchive.stop();
    }
  });

  it("resumes across the real archive (archiver + archived reader) and Redis, exactly once, then live", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tributary-fanout-"));
    const blob = createFileBlobStore(dir);
    const app = new Appender(store, newConversationId());
    await app.append(20, 3);
    const res = await createArchiver(r.client, blob, { partitions: PARTITIONS, retentionMs: 0, maxSegmentEvents: 4 }).archiveStream(
      { kind: "conversation", id: app.conversationId },
      app.offsets[12] as string,
    );
    expect(res).toMatchObject({ events: 12, trimmed: 12 });
    const f = new Fanout({ redis: r.client, partitions: PARTITIONS, olderEvents: olderEventsFrom(createArchivedEventReader(r.client, blob, PARTITIONS)) });
    f.registerEncoder("off", offsetEncoder);
    try {
      for (const cut of [0, 1, 5, 11, 12, 13, 19, 20]) {
        const s = new RecordingSink("off");
        const att = await f.attach(app.conversationId, cut === 0 ? "0" : (app.offsets[cut - 1] as string), s);
        expect(await att.live).toBe("live");
        expect(s.offsets).toEqual(app.offsets.slice(cut));
        att.detach();
      }
      const s = new RecordingSink("off");
      const att = await f.attach(app.conversationId, "0", s);
      await att.live;
      await app.append(3);
      await waitFor(() => expect(s.offsets).toEqual(app.offsets));
      att.detach();
    } finally {
      await f.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("survives its blocking connection being killed: resumes from the same positions, nothing lost or repeated", async () => {
    const nodeId = `kill${Math.random().toString(36).slice(2, 10)}`;
    const f = new Fanout({ redis: r.client, partitions: PARTITIONS, nodeId });
    f.registerEncoder("off", offsetEncoder);
    try {
      const app = new Appender(store, newConversationId());
      const s = new RecordingSink("off");
      await f.attach(app.conversationId, null, s);
      await app.append(3);
      await waitFor(() => expect(s.offsets).toEqual(app.offsets));
      let killed = 0;
      for (const node of masters(r.client)) {
        const list = (await node.client("LIST")) as string;
        for (const line of list.split("\n")) {
          if (!line.includes(`name=tributary-fanout:${nodeId}:`)) continue;
          const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
          if (id) killed += Number(await node.client("KILL", "ID", id));
        }
      }
      expect(killed).toBeGreaterThanOrEqual(1);
      await app.append(10, 2);
      await waitFor(() => expect(s.offsets).toEqual(app.offsets));
    } finally {
      await f.stop();
    }
  });

  it("stamps live frames with the publish sequence and reports it to observers", async () => {
    const app = new Appender(store, newConversationId());
    const f2 = new Fanout({ redis: r.client, partitions: PARTITIONS });
    const seen: Array<[string, number]> = [];
    f2.registerEncoder("seq", (env, seq) => `${seq}:${env.offset}`);
    f2.onPublish((env, seq) => seen.push([env.offset, seq]));
    try {
      const s = new RecordingSink("seq");
      await f2.attach(app.conversationId, null, s);
      await app.append(4);
      await waitFor(() => expect(s.frames.length).toBe(4));
      expect(s.frames).toEqual(app.offsets.map((o, i) => `${i + 1}:${o}`));
      expect(seen).toEqual(app.offsets.map((o, i) => [o, i + 1]));
      expect(f2.seq).toBe(4);
    } finally {
      await f2.stop();
    }
  });

  it.each([
    [true, 2],
    [false, 1],
  ])("pipelineReads %s: reads in flight while a reply is published = %i; every event once, in order", async (pipelineReads, expected) => {
    const app = new Appender(store, newConversationId());
    // Count the XREADs the fan-out's blocking connection sends (it is a duplicate of this client).
    let calls = 0;
    const client = r.client as unknown as { duplicate: (...a: unknown[]) => { xreadBuffer: (...a: unknown[]) => Promise<unknown> } };
    const duplicate = client.duplicate;
    client.duplicate = (...a: unknown[]) => {
      const c = duplicate.apply(r.client, a);
      const xread = c.xreadBuffer.bind(c);
      c.xreadBuffer = (...args: unknown[]) => {
        calls++;
        return xread(...args);
      };
      return c;
    };
    // No read times out in this test (blockMs ≫ its length), so every XREAD but the one in flight
    // ends in a published round: while a reply is published, calls − rounds is 2 when the next read
    // was already sent (pipelined, opt-in), 1 when it was not (the default).
    const f3 = new Fanout({ redis: r.client, partitions: PARTITIONS, blockMs: 60_000, nodeId: "pipelined", pipelineReads });
    f3.registerEncoder("off", offsetEncoder);
    let rounds = 0;
    const onRound = (m: unknown): void => {
      if ((m as ReadRound).nodeId === "pipelined") rounds++;
    };
    subscribe(READ_CHANNEL, onRound);
    const inFlight: number[] = [];
    const s = new RecordingSink("off");
    const deliver = s.deliver.bind(s);
    s.deliver = (frame, env) => {
      inFlight.push(calls - rounds);
      return deliver(frame, env);
    };
    try {
      await f3.attach(app.conversationId, null, s);
      const live: string[] = [];
      for (let i = 0; i < 4; i++) {
        live.push(...(await app.append(3)));
        await waitFor(() => expect(s.frames.length).toBe(live.length));
      }
      expect(s.frames).toEqual(live);
      expect(inFlight.length).toBe(12);
      for (const x of inFlight) expect(x).toBe(expected);
    } finally {
      unsubscribe(READ_CHANNEL, onRound);
      client.duplicate = duplicate;
      await f3.stop();
    }
  });

  it("reports each XREAD round on its diagnostics channel (ids returned, reply and publish times) once subscribed", async () => {
    const app = new Appender(store, newConversationId());
    const rounds: ReadRound[] = [];
    const onRound = (m: unknown): void => {
      rounds.push(m as ReadRound);
    };
    subscribe(READ_CHANNEL, onRound);
    try {
      const s = new RecordingSink("off");
      const att = await fanout.attach(app.conversationId, null, s);
      const live = await app.append(5);
      await waitFor(() => expect(s.frames.length).toBe(5));
      // Every delivered id was reported by the round that returned it, after it was read and published.
      const reported = rounds.flatMap((r) => r.ids);
      for (const o of live) expect(reported).toContain(o);
      for (const r of rounds) {
        expect(r.issuedAt).toBeLessThanOrEqual(r.repliedAt);
        expect(r.repliedAt).toBeLessThanOrEqual(r.publishedAt);
      }
      att.detach();
    } finally {
      unsubscribe(READ_CHANNEL, onRound);
    }
  });
});
