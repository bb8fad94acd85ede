import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/keys.js";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { createSimulatedResponder } from "../../actors/responders/index.js";
import type { CommandApi } from "../../actors/runtime/index.js";
import { startInProcessWorker, type InProcessWorker } from "../support/in-process-worker.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";
import { waitFor } from "../support/wait.js";

/**
 * The worker's command streams are queues: once a command is decided and acknowledged it is
 * removed (trimAcknowledged, core/redis/scripts/trim-acked-1.lua), so `{pN}:cmd` holds what is still
 * to be done rather than every command ever sent. What was decided stays in the event streams.
 */
const config = { PARTITIONS: 4, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: 1000, SIM_MAX_TOKENS: 8 };

describe.each(REDIS_MODES)("command streams are trimmed once acknowledged (%s)", (mode) => {
  let r: TestRedis;
  let w: InProcessWorker | undefined;
  let api: CommandApi;

  beforeAll(async () => {
    r = await testRedis(mode);
    const store = createRedisEventStore(r.client, { partitions: config.PARTITIONS, idemTtlMs: 60_000 });
    const responder = createSimulatedResponder({ tokensPerSec: 1_000_000, maxTokens: 8 });
    w = await startInProcessWorker(r, { config, store, responder, log: createLogger("silent") });
    api = w.api;
  });
  afterAll(async () => {
    await w?.stop();
    await r?.cleanup();
  });

  it("every command is decided, and each partition's command stream ends with at most its last entry", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) ids.push((await api.createConversation({ tenantId: "t", userId: `u${i}`, projectId: "p" })).id);
    const store = createRedisEventStore(r.client, { partitions: config.PARTITIONS, idemTtlMs: 60_000 });
    for (const id of ids) expect((await store.head({ kind: "conversation", id })).version).toBeGreaterThan(0);
    const lengths = await waitFor(async () => {
      const ls = await Promise.all(Array.from({ length: config.PARTITIONS }, (_, p) => r.client.xlen(keys.cmd(p))));
      return ls.every((n) => n <= 1) ? ls : undefined;
    }, 20_000);
    expect(lengths.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(config.PARTITIONS);
  });
});
