import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../core/logger.js";
import type { RecordedEvent } from "../../core/envelope.js";
import type { EventStore } from "../../core/event-store.js";
import { keys, streamKeys, type StreamRef } from "../../core/keys.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { createFileBlobStore } from "../../core/blob/index.js";
import { conversationDecider, type ConversationCommand, type ConversationDomainEvent, type ConversationState } from "../../actors/conversation/index.js";
import {
  AggregateRepository,
  blobSnapshotStore,
  metaSnapshotPointer,
  metaStreamProbe,
  noSnapshots,
  type CommandApi,
  type ReplyResponder,
} from "../../actors/runtime/index.js";
import { startInProcessWorker, type InProcessWorker } from "../support/in-process-worker.js";
import { testRedis, REDIS_MODES, type TestRedis } from "../support/redis.js";
import { waitFor } from "../support/wait.js";

/**
 * A stream that loses its tail under a worker that still holds it in memory — what a Redis failover
 * to a replica that lacked the last appends does (DURABILITY=wait-replica: the appends whose WAIT
 * timed out were never acknowledged, but a tail read after a CONFLICT, or a first load, may have
 * seen them on the old master). The worker must decide on the stream, not on its memory: a repeated
 * clientMessageId whose message the stream lost is accepted anew (not answered "already posted"), a
 * new message is appended at the stream's version (not refused by CONFLICT after CONFLICT), and a
 * stream that moved on past the lost tail is never folded onto the stale state.
 *
 * The loss is made by hand, as the promoted replica would have it: the events after version `keep`
 * removed from the stream and the partition log, the meta hash back at `keep`'s head. (Dedupe keys
 * of the lost appends are left: every command here carries a new command id.)
 */
const P = 4;
const log = createLogger("silent");
const config = { PARTITIONS: P, MAX_DELIVERIES: 5, SNAPSHOT_EVERY: 1000, SIM_MAX_TOKENS: 64 };

/** Two one-word pieces, then done. */
const shortResponder: ReplyResponder = {
  async *stream(req) {
    for (let i = req.skip ?? 0; i < 2; i++) yield { kind: "delta" as const, text: `w${i} ` };
    yield { kind: "done" as const, finishReason: "stop", usage: { inputTokens: 3, outputTokens: 2 } };
  },
};

async function loseTail(redis: RedisClient, store: EventStore, ref: StreamRef, keep: number): Promise<void> {
  const evs = await store.read(ref);
  const kept = evs[keep - 1];
  if (!kept) throw new Error(`no v${keep}`);
  const lost = evs.slice(keep);
  const sk = streamKeys(ref, P);
  if (lost.length > 0) await redis.xdel(sk.stream, ...lost.map((e) => e.offset));
  const logEntries = (await redis.xrange(keys.log(sk.partition), "-", "+")) as Array<[string, string[]]>;
  const lostOffsets = new Set(lost.map((e) => e.offset));
  const lostLog = logEntries.filter(([, f]) => lostOffsets.has(f[f.indexOf("o") + 1] as string)).map(([id]) => id);
  if (lostLog.length > 0) await redis.xdel(keys.log(sk.partition), ...lostLog);
  await redis.hset(sk.meta, "version", String(keep), "hash", kept.hash, "last", kept.offset);
}

const ended = (evs: RecordedEvent[], replyId: string) =>
  evs.some((e) => ["assistant.completed", "assistant.cancelled", "assistant.failed"].includes(e.type) && (e.data as { messageId: string }).messageId === replyId);

describe.each(REDIS_MODES)("a stream that lost its tail under a cached actor, on %s Redis", (mode) => {
  let r: TestRedis;
  let w: InProcessWorker | undefined;
  let api: CommandApi;
  const store = () => createRedisEventStore(r.client, { partitions: P, idemTtlMs: 60_000 });

  beforeAll(async () => {
    r = await testRedis(mode);
    w = await startInProcessWorker(r, { config, store: store(), responder: shortResponder, log });
    api = w.api;
  });
  afterAll(async () => {
    await w?.stop();
    await r?.cleanup();
  });

  const conversation = (id: string): StreamRef => ({ kind: "conversation", id });
  const post = (id: string, clientMessageId: string, text: string) =>
    api.postMessage({ conversationId: id, tenantId: "t-lost", userId: "u-lost", tier: "privileged", text, clientMessageId });

  it("accepts a repeated clientMessageId anew and appends new messages at the stream's version", async () => {
    const conv = await api.createConversation({ tenantId: "t-lost", userId: "u-lost", projectId: undefined });
    const ref = conversation(conv.id);
    const first = await post(conv.id, "lost-1", "hello");
    if (first.kind !== "accepted") throw new Error("not accepted");
    await waitFor(async () => (ended(await store().read(ref), first.body.replyId) ? true : undefined));
    // The worker holds the whole reply in memory; the stream goes back to its creation.
    await loseTail(r.client, store(), ref, 1);

    const again = await post(conv.id, "lost-1", "hello");
    if (again.kind !== "accepted") throw new Error("not accepted");
    expect(again.status).toBe(201);
    let evs = await store().read(ref);
    const received = evs.filter((e) => e.type === "message.received");
    expect(received.map((e) => (e.data as { messageId: string }).messageId)).toEqual([again.body.messageId]);
    await waitFor(async () => (ended(await store().read(ref), again.body.replyId) ? true : undefined));

    const next = await post(conv.id, "lost-2", "and then");
    if (next.kind !== "accepted") throw new Error("not accepted");
    expect(next.status).toBe(201);
    await waitFor(async () => (ended(await store().read(ref), next.body.replyId) ? true : undefined));
    evs = await store().read(ref);
    expect(evs.map((e) => e.version)).toEqual(evs.map((_, i) => i + 1));
    expect(evs.filter((e) => e.type === "message.received").map((e) => (e.data as { clientMessageId: string }).clientMessageId)).toEqual(["lost-1", "lost-2"]);
    // And the worker's memory is the stream's fold again.
    const fresh = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: store(), snapshots: noSnapshots });
    const cached = await w!.worker.conversations.load(conv.id);
    const folded = await fresh.load(conv.id);
    expect(cached.version).toBe(folded.version);
    expect(cached.state).toEqual(folded.state);
  });

  it("never folds a stream that moved on past its lost tail onto the stale state", async () => {
    const id = `c-moved-${Math.random().toString(36).slice(2)}`;
    const ref = conversation(id);
    const at = new Date().toISOString();
    const repoOf = () => new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: store(), snapshots: noSnapshots, log });
    const run = async (repo: ReturnType<typeof repoOf>, commandId: string, command: ConversationCommand) => {
      const { decision } = await repo.execute(id, commandId, at, (s) => conversationDecider.decide(conversationDecider.parseCommand(command), s));
      expect(decision.ok).toBe(true);
    };
    const postOf = (n: number): ConversationCommand => ({
      type: "postMessage", at, messageId: `m${n}`, replyId: `r${n}`, clientMessageId: `k${n}`, text: `text ${n}`, userId: "u", maxTokens: 16,
    });
    const a = repoOf();
    await run(a, "create", { type: "create", at, ownerId: "u", tenantId: "t" });
    await run(a, "post-1", postOf(1));
    expect((await a.load(id)).version).toBe(3);
    // Lost with the old master: m1. Another worker then posts m2 and its first delta (v2..v4).
    await loseTail(r.client, store(), ref, 1);
    const b = repoOf();
    await run(b, "post-2", postOf(2));
    await run(b, "delta-2-0", { type: "appendDelta", at, replyId: "r2", index: 0, text: "x" });
    // `a` still holds m1 at v3; reading the stream's tail must not fold m2's delta onto it.
    const refreshed = await a.load(id, { fresh: true });
    const folded = await repoOf().load(id);
    expect(refreshed.version).toBe(4);
    expect(refreshed.state).toEqual(folded.state);
    // And a's next append lands on the stream's real state.
    await run(a, "delta-2-1", { type: "appendDelta", at, replyId: "r2", index: 1, text: "y" });
    const evs = await store().read(ref);
    expect(evs.map((e) => e.type)).toEqual(["conversation.created", "message.received", "assistant.started", "assistant.delta", "assistant.delta"]);
  });

  it("rehydrates past a snapshot the stream no longer continues", async () => {
    const id = `c-snap-${Math.random().toString(36).slice(2)}`;
    const ref = conversation(id);
    const at = new Date().toISOString();
    const dir = mkdtempSync(join(tmpdir(), "trib-lost-tail-"));
    try {
      const blobs = createFileBlobStore(dir);
      const withSnapshots = () =>
        new AggregateRepository({
          kind: "conversation",
          decider: conversationDecider,
          store: store(),
          snapshots: blobSnapshotStore(blobs, metaSnapshotPointer(r.client, P)),
          probe: metaStreamProbe(r.client, P, { snapshots: true }),
          snapshotEvery: 3,
          log,
        });
      const execute = (repo: AggregateRepository<ConversationCommand, ConversationDomainEvent, ConversationState>, commandId: string, command: ConversationCommand) =>
        repo.execute(id, commandId, at, (s) => conversationDecider.decide(conversationDecider.parseCommand(command), s));
      const postOf = (n: number): ConversationCommand => ({
        type: "postMessage", at, messageId: `m${n}`, replyId: `r${n}`, clientMessageId: `k${n}`, text: `text ${n}`, userId: "u", maxTokens: 16,
      });
      const a = withSnapshots();
      await execute(a, "create", { type: "create", at, ownerId: "u", tenantId: "t" });
      await execute(a, "post-1", postOf(1)); // v3: a snapshot of m1's state (written in the background)
      await waitFor(async () => ((await metaStreamProbe(r.client, P, { snapshots: true }).probe(ref)).snapshot ? true : undefined));
      // m1 is lost, its snapshot and pointer are not; the stream is rewritten past it (m2, a delta: v2..v4).
      await loseTail(r.client, store(), ref, 1);
      const b = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: store(), snapshots: noSnapshots, log });
      await execute(b, "post-2", postOf(2));
      await execute(b, "delta-2-0", { type: "appendDelta", at, replyId: "r2", index: 0, text: "x" });
      const loaded = await withSnapshots().load(id);
      const folded = await new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: store(), snapshots: noSnapshots }).load(id);
      expect(loaded.version).toBe(4);
      expect(loaded.state).toEqual(folded.state);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("never refuses from a cached state the stream no longer holds", async () => {
    const id = `c-refuse-${Math.random().toString(36).slice(2)}`;
    const at = new Date().toISOString();
    const repo = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: store(), snapshots: noSnapshots, log });
    const execute = (commandId: string, command: ConversationCommand) =>
      repo.execute(id, commandId, at, (s) => conversationDecider.decide(conversationDecider.parseCommand(command), s));
    const postOf = (n: number): ConversationCommand => ({
      type: "postMessage", at, messageId: `m${n}`, replyId: `r${n}`, clientMessageId: `k${n}`, text: `text ${n}`, userId: "u", maxTokens: 16,
    });
    await execute("create", { type: "create", at, ownerId: "u", tenantId: "t" });
    await execute("post-1", postOf(1));
    // The cached copy has r1 running, so it would refuse a second message; the stream lost m1.
    await loseTail(r.client, store(), conversation(id), 1);
    const { decision } = await execute("post-2", postOf(2));
    expect(decision.ok).toBe(true);
    const evs = await store().read(conversation(id));
    expect(evs.filter((e) => e.type === "message.received").map((e) => (e.data as { messageId: string }).messageId)).toEqual(["m2"]);
  });

  it("never appends on a stream rewritten to the cached version with other events", async () => {
    const id = `c-same-${Math.random().toString(36).slice(2)}`;
    const ref = conversation(id);
    const at = new Date().toISOString();
    const repoOf = () => new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: store(), snapshots: noSnapshots, log });
    const execute = (repo: ReturnType<typeof repoOf>, commandId: string, command: ConversationCommand) =>
      repo.execute(id, commandId, at, (s) => conversationDecider.decide(conversationDecider.parseCommand(command), s));
    const postOf = (n: number): ConversationCommand => ({
      type: "postMessage", at, messageId: `m${n}`, replyId: `r${n}`, clientMessageId: `k${n}`, text: `text ${n}`, userId: "u", maxTokens: 16,
    });
    const a = repoOf();
    await execute(a, "create", { type: "create", at, ownerId: "u", tenantId: "t" });
    await execute(a, "post-1", postOf(1));
    // m1 (v2, v3) is lost; another worker posts m2, so the stream is at v3 again — a's version.
    await loseTail(r.client, store(), ref, 1);
    await execute(repoOf(), "post-2", postOf(2));
    // a still streams r1: its delta must not land on m2's history (r1 does not exist there).
    const { decision } = await execute(a, "delta-1-0", { type: "appendDelta", at, replyId: "r1", index: 0, text: "x" });
    expect(decision.ok).toBe(false);
    const evs = await store().read(ref);
    expect(evs.map((e) => e.type)).toEqual(["conversation.created", "message.received", "assistant.started"]);
    expect((await a.load(id)).state).toEqual((await repoOf().load(id)).state);
  });
});
