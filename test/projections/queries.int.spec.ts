import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyBatch } from "../../projections/apply.js";
import { getConversation, getQuota, listConversations, spend } from "../../projections/queries.js";
import { PG_TARGETS, testDatabase, type TestDb } from "../support/postgres.js";
import { LogBuilder, type TestEvent } from "./fixtures.js";

/** The edge's read queries (CONTRACT §3 shapes), on both targets. */
describe.each(PG_TARGETS)("queries on %s", (target) => {
  let t: TestDb;
  const at = (d: number, s = 0) => new Date(Date.UTC(2026, 10, d, 12, 0, s)).toISOString();
  const conv = (id: string, tenant: string, owner: string, d: number, project: string | null = "p1"): TestEvent => ({
    kind: "conversation",
    id,
    type: "conversation.created",
    at: at(d),
    data: { title: `title ${id}`, model: "m1", ownerId: owner, tenantId: tenant, projectId: project },
  });
  const reply = (cid: string, n: number, d: number, usage: [number, number], cost: number, model = "m1", user = "alice"): TestEvent[] => [
    { kind: "conversation", id: cid, type: "message.received", at: at(d, 1), data: { messageId: `${cid}-m${n}`, clientMessageId: `k${n}`, userId: user, text: `q${n}` } },
    { kind: "conversation", id: cid, type: "assistant.started", at: at(d, 2), data: { messageId: `${cid}-a${n}`, replyTo: `${cid}-m${n}`, model } },
    { kind: "conversation", id: cid, type: "assistant.delta", at: at(d, 3), data: { messageId: `${cid}-a${n}`, index: 0, text: "ans" } },
    {
      kind: "conversation",
      id: cid,
      type: "assistant.completed",
      at: at(d, 4),
      data: { messageId: `${cid}-a${n}`, text: "answer", finishReason: "stop", usage: { inputTokens: usage[0], outputTokens: usage[1] }, costMicros: cost },
    },
  ];

  beforeAll(async () => {
    t = await testDatabase(target);
    const log = new LogBuilder(4);
    log.add(conv("q-a1", "acme", "alice", 1), conv("q-a2", "acme", "alice", 2), conv("q-a3", "acme", "alice", 3), conv("q-b1", "acme", "bob", 4, null));
    log.add(conv("q-x1", "other", "alice", 5));
    log.add(...reply("q-a1", 1, 1, [10, 20], 100), ...reply("q-a1", 2, 2, [1, 2], 10, "m2"), ...reply("q-b1", 1, 4, [5, 5], 50, "m1", "bob"));
    log.add(...reply("q-x1", 1, 5, [1000, 1000], 99999));
    log.add(
      { kind: "ledger", id: "user:4:acme:alice", type: "ledger.configured", at: at(20), data: { tier: "registered", dailyTokens: 1000, maxConcurrent: 4, source: "default" } },
      { kind: "ledger", id: "user:4:acme:alice", type: "ledger.reserved", at: at(20, 1), data: { reservationId: "r", tokens: 100, expiresAt: at(21) } },
      { kind: "ledger", id: "user:4:acme:alice", type: "ledger.committed", at: at(20, 2), data: { reservationId: "r", tokens: 40, costMicros: 400, reservedTokens: 100, releasedTokens: 60 } },
    );
    await applyBatch(t.db, log.entries);
  });
  afterAll(() => t?.cleanup());

  it("lists a user's conversations newest first with a cursor that never repeats or skips", async () => {
    const p1 = await listConversations(t.db, { tenantId: "acme", userId: "alice", limit: 2 });
    expect(p1.items.map((i) => i.id)).toEqual(["q-a3", "q-a2"]);
    expect(p1.nextCursor).not.toBeNull();
    const p2 = await listConversations(t.db, { tenantId: "acme", userId: "alice", limit: 2, cursor: p1.nextCursor ?? undefined });
    expect(p2.items.map((i) => i.id)).toEqual(["q-a1"]);
    expect(p2.nextCursor).toBeNull();
    expect(p2.items[0]).toMatchObject({ title: "title q-a1", model: "m1", ownerId: "alice", messageCount: 2, status: "idle" });
    const all = await listConversations(t.db, { tenantId: "acme", limit: 50 });
    expect(all.items.map((i) => i.id)).toEqual(["q-b1", "q-a3", "q-a2", "q-a1"]);
    await expect(listConversations(t.db, { tenantId: "acme", limit: 2, cursor: "garbage" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("gets a conversation with its messages in order; another tenant's id is not found", async () => {
    const c = await getConversation(t.db, "q-a1", "acme");
    expect(c).toMatchObject({ id: "q-a1", ownerId: "alice", status: "idle" });
    expect(c?.messages.map((m) => [m.id, m.role, m.status, m.text])).toEqual([
      ["q-a1-m1", "user", "received", "q1"],
      ["q-a1-a1", "assistant", "completed", "answer"],
      ["q-a1-m2", "user", "received", "q2"],
      ["q-a1-a2", "assistant", "completed", "answer"],
    ]);
    expect(c?.messages[1]?.usage).toEqual({ inputTokens: 10, outputTokens: 20 });
    expect(c?.messages[0]?.usage).toBeUndefined();
    expect(await getConversation(t.db, "q-x1", "acme")).toBeNull();
  });

  it("spend by user, model, day and project with exact totals, scoped to the tenant", async () => {
    const byUser = await spend(t.db, { tenantId: "acme", from: "2026-11-01", to: "2026-11-30", groupBy: "user" });
    expect(byUser).toEqual({
      rows: [
        { user: "alice", messages: 2, inputTokens: 11, outputTokens: 22, costMicros: 110 },
        { user: "bob", messages: 1, inputTokens: 5, outputTokens: 5, costMicros: 50 },
      ],
      totals: { messages: 3, inputTokens: 16, outputTokens: 27, costMicros: 160 },
    });
    const byModel = await spend(t.db, { tenantId: "acme", from: "2026-11-01", to: "2026-11-30", groupBy: "model" });
    expect(byModel.rows.map((r) => [r.model, r.costMicros])).toEqual([["m1", 150], ["m2", 10]]);
    const byDay = await spend(t.db, { tenantId: "acme", from: "2026-11-02", to: "2026-11-04", groupBy: "day" });
    expect(byDay.rows.map((r) => [r.day, r.costMicros])).toEqual([["2026-11-02", 10], ["2026-11-04", 50]]);
    const byProject = await spend(t.db, { tenantId: "acme", from: "2026-11-01", to: "2026-11-30", groupBy: "project" });
    expect(byProject.rows.map((r) => [r.project, r.messages])).toEqual([[null, 1], ["p1", 2]]);
    const oneUser = await spend(t.db, { tenantId: "acme", userId: "bob", from: "2026-11-01", to: "2026-11-30", groupBy: "day" });
    expect(oneUser.totals.costMicros).toBe(50);
    await expect(spend(t.db, { tenantId: "acme", from: "2026-11-30", to: "2026-11-01", groupBy: "day" })).rejects.toThrow();
  });

  it("the quota ledger in the /v1/quota shape", async () => {
    const q = await getQuota(t.db, "acme", "alice", undefined, new Date(at(20, 30)));
    expect(q).toEqual({
      tier: "registered",
      limits: { dailyTokens: 1000, maxConcurrent: 4 },
      used: { tokens: 40, costMicros: 400 },
      reserved: { tokens: 0 },
      remaining: { tokens: 960 },
      resetsAt: "2026-11-21T00:00:00.000Z",
    });
    expect(await getQuota(t.db, "acme", "nobody")).toBeNull();
    expect(await getQuota(t.db, "acme", "nobody", { tier: "anonymous", dailyTokens: 20000, maxConcurrent: 1 })).toMatchObject({ remaining: { tokens: 20000 } });
  });
});
