import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { applyBatch } from "../../projections/apply.js";
import { liveSchema } from "../../migrations/index.js";
import { PG_TARGETS, testDatabase, type TestDb } from "../support/postgres.js";
import { LogBuilder, type TestEvent } from "./fixtures.js";

/** Projection specs, given / when / then, on real Postgres and on PGlite. */
describe.each(PG_TARGETS)("projections on %s", (target) => {
  let t: TestDb;
  let schema: string;
  beforeAll(async () => {
    t = await testDatabase(target);
    schema = await liveSchema(t.db as never);
  });
  afterAll(() => t?.cleanup());

  const at = (s: number) => new Date(Date.UTC(2026, 10, 21, 12, 0, s)).toISOString();
  const rows = async (table: string, where = "true") =>
    (await sql<Record<string, unknown>>`select * from ${sql.id(schema, table)} where ${sql.raw(where)} order by 1`.execute(t.db)).rows;

  /** given events (applied), when more events arrive (applied in one batch), then read the rows. */
  const given = (log: LogBuilder, ...events: TestEvent[]) => applyBatch(t.db, log.add(...events));

  const created = (id: string, owner = "alice", tenant = "acme"): TestEvent => ({
    kind: "conversation",
    id,
    type: "conversation.created",
    at: at(0),
    data: { title: "Hello", model: "gpt-sim", ownerId: owner, tenantId: tenant, projectId: "p1" },
  });
  const received = (id: string, m: string, s = 1): TestEvent => ({
    kind: "conversation",
    id,
    type: "message.received",
    at: at(s),
    data: { messageId: m, clientMessageId: `c-${m}`, userId: "alice", text: "hi there" },
  });
  const started = (id: string, a: string, m: string, s = 2): TestEvent => ({
    kind: "conversation",
    id,
    type: "assistant.started",
    at: at(s),
    data: { messageId: a, replyTo: m, model: "gpt-sim" },
  });
  const delta = (id: string, a: string, index: number, text: string): TestEvent => ({
    kind: "conversation",
    id,
    type: "assistant.delta",
    at: at(3 + index),
    data: { messageId: a, index, text },
  });

  it("conversation.created → a conversation row, idle, no messages", async () => {
    const log = new LogBuilder();
    await given(log, created("c1"));
    const [c] = await rows("conversations", "id = 'c1'");
    expect(c).toMatchObject({ id: "c1", tenant_id: "acme", project_id: "p1", owner_id: "alice", title: "Hello", status: "idle", message_count: 0, version: 1 });
  });

  it("a reply streamed in deltas and completed → one assistant row, completed, with usage; spend booked", async () => {
    const log = new LogBuilder();
    await given(log, created("c2"), received("c2", "m1"), started("c2", "a1", "m1"), delta("c2", "a1", 0, "Hel"));
    let [a] = await rows("messages", "id = 'a1'");
    expect(a).toMatchObject({ role: "assistant", status: "streaming", text: "Hel", delta_count: 1 });
    await given(log, delta("c2", "a1", 1, "lo"), {
      kind: "conversation",
      id: "c2",
      type: "assistant.completed",
      at: at(9),
      data: { messageId: "a1", text: "Hello", finishReason: "stop", usage: { inputTokens: 5, outputTokens: 2 }, costMicros: 1234 },
    });
    [a] = await rows("messages", "id = 'a1'");
    expect(a).toMatchObject({ status: "completed", text: "Hello", input_tokens: 5, output_tokens: 2, cost_micros: 1234, user_id: "alice", reply_to: "m1" });
    expect(typeof a?.cost_micros).toBe("number");
    const [u] = await rows("messages", "id = 'm1'");
    expect(u).toMatchObject({ role: "user", status: "received", text: "hi there", client_message_id: "c-m1" });
    const [c] = await rows("conversations", "id = 'c2'");
    expect(c).toMatchObject({ status: "idle", message_count: 1, reply_count: 1, version: 6 });
    const spend = await rows("spend_daily", "tenant_id = 'acme'");
    expect(spend).toEqual([
      { tenant_id: "acme", project_id: "p1", user_id: "alice", model: "gpt-sim", day: "2026-11-21", messages: 1, input_tokens: 5, output_tokens: 2, cost_micros: 1234 },
    ]);
  });

  it("a cancelled reply keeps its streamed text and is billed for what was generated (I8)", async () => {
    const log = new LogBuilder();
    await given(log, created("c3", "bob", "globex"), received("c3", "m3"), started("c3", "a3", "m3"), delta("c3", "a3", 0, "par"), {
      kind: "conversation",
      id: "c3",
      type: "assistant.cancelled",
      at: at(20),
      data: { messageId: "a3", usage: { inputTokens: 4, outputTokens: 1 }, costMicros: 77 },
    });
    const [a] = await rows("messages", "id = 'a3'");
    expect(a).toMatchObject({ status: "cancelled", text: "par", cost_micros: 77 });
    const spend = await rows("spend_daily", "tenant_id = 'globex'");
    expect(spend).toMatchObject([{ user_id: "alice", messages: 1, input_tokens: 4, output_tokens: 1, cost_micros: 77 }]);
  });

  it("a batch redelivered after it was applied changes nothing", async () => {
    const log = new LogBuilder();
    const batch = log.add(created("c4"), received("c4", "m4"), started("c4", "a4", "m4"), delta("c4", "a4", 0, "x"));
    const first = await applyBatch(t.db, batch);
    expect(first.applied).toBe(4);
    const before = await rows("messages", "conversation_id = 'c4'");
    const again = await applyBatch(t.db, batch);
    expect(again).toMatchObject({ applied: 0, skipped: 4 });
    expect(await rows("messages", "conversation_id = 'c4'")).toEqual(before);
  });

  it("an undecodable entry or invalid event is recorded in rejects and does not block the partition", async () => {
    const log = new LogBuilder(1);
    const [bad] = log.add({ kind: "conversation", id: "c5", type: "conversation.created", at: at(0), data: { title: 42 } });
    const garbage = log.add(created("c6"))[0];
    if (!bad || !garbage) throw new Error("fixture");
    garbage.fields.set("e", Buffer.from([0xc1, 0xff]));
    const good = log.add(created("c7"));
    const r = await applyBatch(t.db, [bad, garbage, ...good]);
    expect(r).toMatchObject({ applied: 3, rejected: 2 });
    expect(await rows("rejects")).toHaveLength(2);
    expect(await rows("conversations", "id = 'c7'")).toHaveLength(1);
  });

  it("sessions and quota ledgers", async () => {
    const log = new LogBuilder();
    const ledger = "user:4:acme:alice";
    await given(
      log,
      { kind: "session", id: "s1", type: "session.opened", at: at(0), data: { sessionId: "s1", userId: "alice", tenantId: "acme", tier: "anonymous", transport: "sse" } },
      { kind: "session", id: "s1", type: "session.tierUpgraded", at: at(1), data: { sessionId: "s1", userId: "alice", from: "anonymous", to: "registered" } },
      { kind: "session", id: "s1", type: "session.closed", at: at(2), data: { sessionId: "s1", reason: "client" } },
      { kind: "ledger", id: ledger, type: "ledger.configured", at: at(0), data: { tier: "registered", dailyTokens: 1000, maxConcurrent: 4, source: "default" } },
      { kind: "ledger", id: ledger, type: "ledger.reserved", at: at(1), data: { reservationId: "r1", tokens: 100, expiresAt: at(60) } },
      { kind: "ledger", id: ledger, type: "ledger.reserved", at: at(1), data: { reservationId: "r2", tokens: 50, expiresAt: at(60) } },
      { kind: "ledger", id: ledger, type: "ledger.committed", at: at(2), data: { reservationId: "r1", tokens: 30, costMicros: 9, reservedTokens: 100, releasedTokens: 70 } },
      { kind: "ledger", id: ledger, type: "ledger.toppedUp", at: at(3), data: { tokens: 500 } },
    );
    const [s] = await rows("sessions", "id = 's1'");
    expect(s).toMatchObject({ tier: "registered", status: "closed", close_reason: "client", version: 3 });
    const [l] = await rows("quota_ledgers", `id = '${ledger}'`);
    expect(l).toMatchObject({ scope: "user", tenant_id: "acme", user_id: "alice", daily_tokens: 1000, used_tokens: 30, used_micros: 9, reserved_tokens: 50, topup_tokens: 500, open_reservations: 1 });
  });
});
