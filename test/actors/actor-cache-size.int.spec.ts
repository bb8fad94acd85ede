import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config.js";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { ActorWorker, allPartitionsOwnership } from "../../actors/runtime/index.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/** ACTOR_CACHE_SIZE: parsed and bounded at start-up, and what the worker's repositories keep. */
describe("ACTOR_CACHE_SIZE", () => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await testRedis("single");
  });
  afterAll(async () => {
    await r?.cleanup();
  });

  it("defaults to 10,000; a bad value stops start-up with a line naming the variable", () => {
    expect(loadConfig({}).ACTOR_CACHE_SIZE).toBe(10_000);
    expect(loadConfig({ ACTOR_CACHE_SIZE: "50000" }).ACTOR_CACHE_SIZE).toBe(50_000);
    for (const bad of ["0", "99", "1.5", "lots", "-1"]) expect(() => loadConfig({ ACTOR_CACHE_SIZE: bad })).toThrow(/ACTOR_CACHE_SIZE/);
  });

  it("sizes every actor cache of the worker", () => {
    const make = (size?: number) =>
      new ActorWorker({
        config: { PARTITIONS: 4, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: 100, SIM_MAX_TOKENS: 8, ...(size === undefined ? {} : { ACTOR_CACHE_SIZE: size }) },
        redis: r.client,
        store: createRedisEventStore(r.client, { partitions: 4, idemTtlMs: 60_000 }),
        responder: { stream: async function* () {} },
        ownership: allPartitionsOwnership(4),
        log: createLogger("silent"),
      });
    const sized = make(25_000);
    expect(sized.conversations.cacheSize).toBe(25_000);
    expect(sized.sessions.cacheSize).toBe(25_000);
    expect(make().conversations.cacheSize).toBe(10_000);
  });
});
