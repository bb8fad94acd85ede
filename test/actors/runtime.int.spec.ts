import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { RecordedEvent } from "../../core/envelope.js";
import { userLedgerId } from "../../core/events/ledger.js";
import type { CommandApi, ReplyResponder } from "../../actors/runtime/index.js";
import { startInProcessWorker, type InProcessWorker } from "../support/in-process-worker.js";
import { testRedis, REDIS_MODES, type TestRedis } from "../support/redis.js";
import { waitFor } from "../support/wait.js";

/** A deterministic responder: `n` one-word pieces, `delayMs` apart, honouring abort. */
function wordsResponder(n: number, delayMs: number): ReplyResponder {
  return {
    async *stream(req) {
      const total = Math.min(n, req.maxTokens);
      for (let i = req.skip ?? 0; i < total; i++) {
        if (req.signal.aborted) return;
        await new Promise((r) => setTimeout(r, delayMs));
        if (req.signal.aborted) return;
        yield { kind: "delta" as const, text: `w${i} ` };
      }
      yield { kind: "done" as const, finishReason: total < n ? "length" : "stop", usage: { inputTokens: 5, outputTokens: total } };
    },
  };
}

const config = { PARTITIONS: 4, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: 10, SIM_MAX_TOKENS: 64 };

describe.each(REDIS_MODES)("actor runtime on %s Redis", (mode) => {
  let r: TestRedis;
  let w: InProcessWorker | undefined;
  let api: CommandApi;
  const log = createLogger("silent");
  const store = () => createRedisEventStore(r.client, { partitions: config.PARTITIONS, idemTtlMs: 60_000 });

  beforeAll(async () => {
    r = await testRedis(mode);
    w = await startInProcessWorker(r, { config, store: store(), responder: wordsResponder(6, 15), log });
    api = w.api;
  });

  afterAll(async () => {
    await w?.stop();
    await r?.cleanup();
  });

  const events = async (id: string): Promise<RecordedEvent[]> => store().read({ kind: "conversation", id });
  const ended = (evs: RecordedEvent[]) => evs.some((e) => ["assistant.completed", "assistant.cancelled", "assistant.failed"].includes(e.type));

  it("creates a conversation, accepts a message and streams the reply to completion", async () => {
    const conv = await api.createConversation({ tenantId: "t1", userId: "u1", projectId: "p1", title: "hello" });
    expect(conv).toMatchObject({ title: "hello" });
    const res = await api.postMessage({ conversationId: conv.id, tenantId: "t1", userId: "u1", tier: "registered", text: "hi there", clientMessageId: "m-1" });
    expect(res.kind).toBe("accepted");
    if (res.kind !== "accepted") return;
    expect(res.status).toBe(201);
    const evs = await waitFor(async () => {
      const e = await events(conv.id);
      return ended(e) ? e : undefined;
    });
    expect(evs.map((e) => e.type)).toEqual([
      "conversation.created",
      "message.received",
      "assistant.started",
      ...Array(6).fill("assistant.delta"),
      "assistant.completed",
    ]);
    expect(evs.map((e) => e.version)).toEqual(evs.map((_, i) => i + 1));
    expect(evs[1]?.offset).toBe(res.body.offset);
    const deltas = evs.filter((e) => e.type === "assistant.delta").map((e) => (e.data as { index: number }).index);
    expect(deltas).toEqual([0, 1, 2, 3, 4, 5]);
    // The usage was committed on the ledger and nothing stays reserved.
    const quota = await waitFor(async () => {
      const q = await api.getLedger({ tenantId: "t1", userId: "u1" });
      return q.used.tokens > 0 ? q : undefined;
    });
    expect(quota.used.tokens).toBe(5 + 6);
    expect(quota.reserved.tokens).toBe(0);
  });

  it("answers a repeated clientMessageId with the first answer, and a changed text with CONFLICT", async () => {
    const conv = await api.createConversation({ tenantId: "t1", userId: "u2", projectId: undefined });
    const first = await api.postMessage({ conversationId: conv.id, tenantId: "t1", userId: "u2", tier: "registered", text: "a", clientMessageId: "same" });
    const again = await api.postMessage({ conversationId: conv.id, tenantId: "t1", userId: "u2", tier: "registered", text: "a", clientMessageId: "same" });
    expect(first.kind === "accepted" && again.kind === "accepted").toBe(true);
    if (first.kind !== "accepted" || again.kind !== "accepted") return;
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    await expect(
      api.postMessage({ conversationId: conv.id, tenantId: "t1", userId: "u2", tier: "registered", text: "b", clientMessageId: "same" }),
    ).rejects.toMatchObject({ code: "CONFLICT" });
    const evs = await events(conv.id);
    expect(evs.filter((e) => e.type === "message.received")).toHaveLength(1);
  });

  it("rejects a new message while a reply runs, and cancels it billed for what was generated", async () => {
    const conv = await api.createConversation({ tenantId: "t2", userId: "u3", projectId: undefined });
    await api.postMessage({ conversationId: conv.id, tenantId: "t2", userId: "u3", tier: "registered", text: "long", clientMessageId: "c1" });
    await expect(
      api.postMessage({ conversationId: conv.id, tenantId: "t2", userId: "u3", tier: "registered", text: "next", clientMessageId: "c2" }),
    ).rejects.toMatchObject({ code: "CONFLICT" });
    await waitFor(async () => ((await events(conv.id)).some((e) => e.type === "assistant.delta") ? true : undefined));
    const c = await api.cancel({ conversationId: conv.id, tenantId: "t2", userId: "u3" });
    expect(c.cancelled).toBe(true);
    const evs = await events(conv.id);
    const last = evs[evs.length - 1];
    expect(last?.type).toBe("assistant.cancelled");
    const usage = (last?.data as { usage: { outputTokens: number } }).usage;
    expect(usage.outputTokens).toBe(evs.filter((e) => e.type === "assistant.delta").length);
    expect((await api.cancel({ conversationId: conv.id, tenantId: "t2", userId: "u3" })).cancelled).toBe(false);
  });

  it("refuses over quota with message.rejected QUOTA_EXCEEDED", async () => {
    await api.setQuota({ tenantId: "t3", userId: "u4", dailyTokens: 10 });
    const conv = await api.createConversation({ tenantId: "t3", userId: "u4", projectId: undefined });
    await expect(
      api.postMessage({ conversationId: conv.id, tenantId: "t3", userId: "u4", tier: "registered", text: "hello", clientMessageId: "q1", maxTokens: 32 }),
    ).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    const evs = await events(conv.id);
    expect(evs.map((e) => e.type)).toEqual(["conversation.created", "message.rejected"]);
    const ledger = await store().read({ kind: "ledger", id: userLedgerId("t3", "u4") });
    expect(ledger.some((e) => e.type === "ledger.reserved")).toBe(false);
  });

  it("hides another tenant's conversation (NOT_FOUND)", async () => {
    const conv = await api.createConversation({ tenantId: "t4", userId: "u5", projectId: undefined });
    await expect(
      api.postMessage({ conversationId: conv.id, tenantId: "other", userId: "u5", tier: "registered", text: "x", clientMessageId: "z" }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("answers the same Idempotency-Key with the same conversation", async () => {
    const a = await api.createConversation({ tenantId: "t5", userId: "u6", projectId: undefined, title: "x", idempotencyKey: "k1" });
    const b = await api.createConversation({ tenantId: "t5", userId: "u6", projectId: undefined, title: "x", idempotencyKey: "k1" });
    expect(b).toEqual(a);
  });

  it("keeps a session actor per connection: opened, resumed, closed; a closed session cannot resume", async () => {
    const sid = `s-${Math.random().toString(36).slice(2)}`;
    const who = { sessionId: sid, tenantId: "t6", userId: "u7", tier: "anonymous" as const };
    await api.session("open", { ...who, transport: "websocket" });
    await api.session("resume", { ...who, transport: "polling" });
    await api.session("upgradeTier", { ...who, tier: "registered" });
    await api.session("close", { ...who, reason: "client namespace disconnect" });
    await api.session("resume", { ...who, transport: "websocket" });
    const evs = await waitFor(async () => {
      const e = await store().read({ kind: "session", id: sid });
      return e.length >= 4 ? e : undefined;
    });
    await new Promise((r) => setTimeout(r, 200)); // the rejected resume must not append anything
    const all = await store().read({ kind: "session", id: sid });
    expect(all.map((e) => e.type)).toEqual(evs.map((e) => e.type));
    expect(all.map((e) => e.type)).toEqual(["session.opened", "session.resumed", "session.tierUpgraded", "session.closed"]);
  });

  it("honours a message's maxTokens above the default (it is not capped at SIM_MAX_TOKENS)", async () => {
    const conv = await api.createConversation({ tenantId: "t7", userId: "u8", projectId: undefined });
    await api.postMessage({ conversationId: conv.id, tenantId: "t7", userId: "u8", tier: "registered", text: "long one", clientMessageId: "x1", maxTokens: 500 });
    const evs = await events(conv.id);
    const started = evs.find((e) => e.type === "assistant.started");
    expect((started?.data as { maxTokens?: number }).maxTokens).toBe(500);
  });
});
