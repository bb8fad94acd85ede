import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { createBudgetDecider, reservationStatus } from "../../actors/ledger/index.js";
import { AggregateRepository, noSnapshots } from "../../actors/runtime/index.js";
import { testRedis, REDIS_MODES, type TestRedis } from "../support/redis.js";

/**
 * A ledger forgets settlements older than its two generations (actors/ledger/state.ts
 * `withSettlement`), so that a busy project budget's state stays bounded. A commit repeated after
 * that is still billed once: its command id (`commit:<reservationId>`, as LedgerPort sends it) is
 * deduped by the event store, which answers the first append instead of the late commit the
 * decider would now decide.
 */
const log = createLogger("silent");
const at = "2026-11-21T10:00:00.000Z";

describe.each(REDIS_MODES)("a settlement repeated after the ledger forgot it, on %s Redis", (mode) => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await testRedis(mode);
  });
  afterAll(async () => {
    await r?.cleanup();
  });

  it("is billed once: the event store's dedupe answers the first commit", async () => {
    const decider = createBudgetDecider({ settledGeneration: 2 });
    const store = createRedisEventStore(r.client, { partitions: 4, idemTtlMs: 60_000 });
    const repo = () => new AggregateRepository({ kind: "ledger", decider, store, snapshots: noSnapshots, log });
    const id = `budget-${Math.random().toString(36).slice(2)}`;
    const first = repo();
    const settle = async (reservationId: string) => {
      const reserve = await first.execute(id, `reserve:${reservationId}`, at, (s) =>
        decider.decide(decider.parseCommand({ type: "reserve", at, reservationId, costMicros: 10 }), s),
      );
      expect(reserve.decision.ok).toBe(true);
      const commit = await first.execute(id, `commit:${reservationId}`, at, (s) =>
        decider.decide(decider.parseCommand({ type: "commit", at, reservationId, costMicros: 7, tokens: 3 }), s),
      );
      expect(commit.decision.ok).toBe(true);
    };
    for (let i = 0; i < 6; i++) await settle(`r${i}`);

    // A fresh worker (nothing cached) folds the stream: r0 is beyond both generations.
    const again = repo();
    const before = await again.rehydrate(id);
    expect(reservationStatus(before.state, "r0")).toBeUndefined();
    expect(before.state.context.used).toBe(6 * 7);
    const late = decider.decide(decider.parseCommand({ type: "commit", at, reservationId: "r0", costMicros: 7, tokens: 3 }), before.state);
    expect(late).toMatchObject({ ok: true, events: [{ type: "budget.committed" }] }); // what the decider alone would bill

    const repeat = await again.execute(id, "commit:r0", at, (s) =>
      decider.decide(decider.parseCommand({ type: "commit", at, reservationId: "r0", costMicros: 7, tokens: 3 }), s),
    );
    expect(repeat.decision.ok).toBe(true);
    expect(repeat.loaded.version).toBe(before.version);
    expect(repeat.loaded.state.context.used).toBe(6 * 7);
    const head = await store.head({ kind: "ledger", id });
    expect(head.version).toBe(before.version);
  });
});
