import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../core/logger.js";
import { partitionOf } from "../../core/partition.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { conversationDecider } from "../../actors/conversation/index.js";
import { ActorWorker, AggregateRepository, allPartitionsOwnership, noSnapshots } from "../../actors/runtime/index.js";
import { runningKey } from "../../actors/runtime/running-set.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/**
 * "Never a reply stuck forever": a reply left running in a partition this worker still owns, with
 * no runner for it (the runner died on a Redis error mid-append), is ended by the owner's periodic
 * sweep — not only when the partition changes hands.
 */
describe("the sweep ends replies whose runner died", () => {
  let r: TestRedis;
  let worker: ActorWorker;
  const log = createLogger("silent");
  const P = 4;

  beforeAll(async () => {
    r = await testRedis("single");
  });
  afterAll(async () => {
    await worker?.stop(100);
    await r?.cleanup();
  });

  it("fails the orphaned reply as WORKER_LOST and clears the running mark", async () => {
    const store = createRedisEventStore(r.client, { partitions: P, idemTtlMs: 60_000 });
    worker = new ActorWorker({
      config: { PARTITIONS: P, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: 100, SIM_MAX_TOKENS: 8 },
      redis: r.client,
      store,
      responder: { stream: async function* () {} },
      ownership: allPartitionsOwnership(P),
      log,
      sweepMs: 200,
      consumer: { blockMs: 100 },
    });
    await worker.start();
    // After start-up recovery: a reply appears running with no runner (as if its runner had died).
    const id = `sweep-${Math.random().toString(36).slice(2)}`;
    const at = new Date().toISOString();
    const repo = new AggregateRepository({ kind: "conversation", decider: conversationDecider, store, snapshots: noSnapshots, log });
    await repo.execute(id, "c0", at, (s) => conversationDecider.decide({ type: "create", at, ownerId: "u", tenantId: "t", projectId: null }, s));
    await repo.execute(id, "c1", at, (s) =>
      conversationDecider.decide({ type: "postMessage", at, messageId: "m", replyId: "r", clientMessageId: "c", text: "hi", userId: "u", maxTokens: 8 }, s),
    );
    await repo.execute(id, "c2", at, (s) => conversationDecider.decide({ type: "appendDelta", at, replyId: "r", index: 0, text: "x" }, s));
    await r.client.sadd(runningKey(partitionOf(id, P)), id);

    // The mark is cleared after the end is appended and the usage settled: wait for both.
    let last: string | undefined;
    let marked = 1;
    for (let i = 0; i < 100 && (last !== "assistant.failed" || marked !== 0); i++) {
      await new Promise((res) => setTimeout(res, 50));
      const evs = await store.read({ kind: "conversation", id });
      last = evs[evs.length - 1]?.type;
      marked = await r.client.sismember(runningKey(partitionOf(id, P)), id);
    }
    const evs = await store.read({ kind: "conversation", id });
    const end = evs[evs.length - 1];
    expect(end?.type).toBe("assistant.failed");
    expect((end?.data as { code: string }).code).toBe("WORKER_LOST");
    expect(evs.filter((e) => e.type === "assistant.failed")).toHaveLength(1);
    expect(await r.client.sismember(runningKey(partitionOf(id, P)), id)).toBe(0);
  });
});
