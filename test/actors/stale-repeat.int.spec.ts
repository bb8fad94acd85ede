import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { conversationDecider, type ConversationCommand } from "../../actors/conversation/index.js";
import { AggregateRepository, CommandBus, noSnapshots, type CommandApi, type ReplyResponder } from "../../actors/runtime/index.js";
import { startInProcessWorker, type InProcessWorker } from "../support/in-process-worker.js";
import { testRedis, REDIS_MODES, type TestRedis } from "../support/redis.js";

/**
 * A repeated clientMessageId that the worker's cached conversation does not know yet, because the
 * first attempt's events reached the stream without reaching this worker's memory: under
 * DURABILITY=wait-replica an append whose WAIT timed out is on the master and answered UNAVAILABLE
 * (not folded), and in a partition hand-over another worker appended it. The repeat then passes
 * the check on the cached state, reserves quota, meets a CONFLICT, reads the tail and decides on
 * the real state: the first answer again, with no events.
 *
 * It must be answered as the repeat it is — 200 with the first message's ids — and the reservation
 * it made released. Before the fix it answered 201 with the ids of this attempt, which no event
 * holds (the cluster failover chaos test's "accepted and lost" message: 201 after 3 attempts,
 * `message.received` 0×), and left the reservation open for its TTL, holding one of the user's
 * concurrent-reply slots for two hours.
 */
const P = 4;
const log = createLogger("silent");
const config = { PARTITIONS: P, MAX_DELIVERIES: 5, SNAPSHOT_EVERY: 1000, SIM_MAX_TOKENS: 64 };
const responder: ReplyResponder = {
  async *stream() {
    yield { kind: "done" as const, finishReason: "stop", usage: { inputTokens: 1, outputTokens: 1 } };
  },
};

describe.each(REDIS_MODES)("a repeat the cached state has not seen, on %s Redis", (mode) => {
  let r: TestRedis;
  let w: InProcessWorker | undefined;
  let api: CommandApi;
  const store = () => createRedisEventStore(r.client, { partitions: P, idemTtlMs: 60_000 });

  beforeAll(async () => {
    r = await testRedis(mode);
    w = await startInProcessWorker(r, { config, store: store(), responder, log });
    api = w.api;
  });
  afterAll(async () => {
    await w?.stop();
    await r?.cleanup();
  });

  it("answers the first message's ids (200), appends nothing and leaves no reservation open", async () => {
    const tenantId = "t-stale";
    const userId = `u-stale-${Math.random().toString(36).slice(2)}`;
    const conv = await api.createConversation({ tenantId, userId, projectId: undefined });
    expect((await w!.worker.conversations.load(conv.id)).version).toBe(1); // cached by the worker

    // The first attempt's message and its finished reply, appended behind the worker's back.
    const other = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: store(), snapshots: noSnapshots, log });
    const at = new Date().toISOString();
    const run = async (commandId: string, command: ConversationCommand) => {
      const { decision } = await other.execute(conv.id, commandId, at, (s) => conversationDecider.decide(conversationDecider.parseCommand(command), s));
      expect(decision.ok).toBe(true);
    };
    await run("first", { type: "postMessage", at, messageId: "m_first", replyId: "r_first", clientMessageId: "k1", text: "hello", userId, maxTokens: 16 });
    await run("first-end", { type: "completeReply", at, replyId: "r_first", finishReason: "stop", usage: { inputTokens: 1, outputTokens: 1 }, costMicros: 0 });
    const before = await store().read({ kind: "conversation", id: conv.id });
    expect(before.map((e) => e.type)).toEqual(["conversation.created", "message.received", "assistant.started", "assistant.completed"]);

    const again = await api.postMessage({ conversationId: conv.id, tenantId, userId, tier: "privileged", text: "hello", clientMessageId: "k1" });
    if (again.kind !== "accepted") throw new Error(`not accepted: ${JSON.stringify(again)}`);
    expect(again.status).toBe(200);
    expect(again.body.messageId).toBe("m_first");
    expect(again.body.replyId).toBe("r_first");
    expect(again.body.offset).toBe(before[1]!.offset);

    const after = await store().read({ kind: "conversation", id: conv.id });
    expect(after.map((e) => e.offset)).toEqual(before.map((e) => e.offset));
    const quota = await w!.worker.ledgerPort.view({ tenantId, userId, tier: "privileged", at: new Date().toISOString() });
    expect(quota.reserved.tokens).toBe(0);

    // And the conversation takes the next message as usual.
    const next = await api.postMessage({ conversationId: conv.id, tenantId, userId, tier: "privileged", text: "next", clientMessageId: "k2" });
    if (next.kind !== "accepted") throw new Error(`not accepted: ${JSON.stringify(next)}`);
    expect(next.status).toBe(201);
  });

  it("a new message refused on the stream's state (a reply started elsewhere) gives its reservation back", async () => {
    const tenantId = "t-stale";
    const userId = `u-busy-${Math.random().toString(36).slice(2)}`;
    const conv = await api.createConversation({ tenantId, userId, projectId: undefined });
    expect((await w!.worker.conversations.load(conv.id)).version).toBe(1);
    const other = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: store(), snapshots: noSnapshots, log });
    const at = new Date().toISOString();
    const command: ConversationCommand = { type: "postMessage", at, messageId: "m_busy", replyId: "r_busy", clientMessageId: "k1", text: "hello", userId, maxTokens: 16 };
    const { decision } = await other.execute(conv.id, "busy", at, (s) => conversationDecider.decide(conversationDecider.parseCommand(command), s));
    expect(decision.ok).toBe(true); // its reply is "running" (no end appended)

    await expect(api.postMessage({ conversationId: conv.id, tenantId, userId, tier: "privileged", text: "another", clientMessageId: "k2" })).rejects.toMatchObject({ code: "CONFLICT" });
    // The repeat of the running message is still answered with its first ids.
    const again = await api.postMessage({ conversationId: conv.id, tenantId, userId, tier: "privileged", text: "hello", clientMessageId: "k1" });
    if (again.kind !== "accepted") throw new Error(`not accepted: ${JSON.stringify(again)}`);
    expect([again.status, again.body.messageId, again.body.replyId]).toEqual([200, "m_busy", "r_busy"]);
    const quota = await w!.worker.ledgerPort.view({ tenantId, userId, tier: "privileged", at: new Date().toISOString() });
    expect(quota.reserved.tokens).toBe(0);
  });

  it("the first attempt itself again (same ids, its dedupe record gone) keeps its reply's reservation", async () => {
    const tenantId = "t-stale";
    const userId = `u-again-${Math.random().toString(36).slice(2)}`;
    const conv = await api.createConversation({ tenantId, userId, projectId: undefined });
    expect((await w!.worker.conversations.load(conv.id)).version).toBe(1);
    const at = new Date().toISOString();
    // The first attempt reserved and appended (its reply still running), behind this worker's back.
    const reserved = await w!.worker.ledgerPort.reserve({ tenantId, userId, projectId: null, tier: "privileged", reservationId: "r_run", tokens: 50, costMicros: 0, conversationId: conv.id, at });
    expect(reserved.ok).toBe(true);
    const other = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store: store(), snapshots: noSnapshots, log });
    const command: ConversationCommand = { type: "postMessage", at, messageId: "m_run", replyId: "r_run", clientMessageId: "k1", text: "hello", userId, maxTokens: 16 };
    expect((await other.execute(conv.id, "run", at, (s) => conversationDecider.decide(conversationDecider.parseCommand(command), s))).decision.ok).toBe(true);

    // The same message with the same ids under a new command id: what a redelivery is once its dedupe record expired.
    const bus = new CommandBus(r.client, P, w!.replies);
    const principal = { tenantId, userId, projectId: null, tier: "privileged" as const, roles: [] };
    const { result } = await bus.send("conversation.postMessage", conv.id, principal, { messageId: "m_run", replyId: "r_run", clientMessageId: "k1", text: "hello" }, { waitMs: 10_000 });
    expect(result).toMatchObject({ ok: true, value: { status: 200, messageId: "m_run", replyId: "r_run" } });
    const quota = await w!.worker.ledgerPort.view({ tenantId, userId, tier: "privileged", at: new Date().toISOString() });
    expect(quota.reserved.tokens).toBe(50);
  });
});
