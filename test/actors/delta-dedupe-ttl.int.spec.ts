import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys, streamKeys } from "../../core/keys.js";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { RecordedEvent } from "../../core/envelope.js";
import { DELTA_DEDUPE_TTL_MS } from "../../actors/runtime/conversation-process.js";
import type { CommandApi, ReplyResponder } from "../../actors/runtime/index.js";
import { startInProcessWorker, type InProcessWorker } from "../support/in-process-worker.js";
import { testRedis, type TestRedis } from "../support/redis.js";
import { waitFor } from "../support/wait.js";

/**
 * A reply's delta appends keep their dedupe records DELTA_DEDUPE_TTL_MS, not IDEM_TTL (a day by
 * default): they are nearly every append of a streamed reply, and each record holds Redis memory
 * for its TTL (docs/operations.md, "Sizing Redis memory"). The message and the reply's end — what
 * bills — keep IDEM_TTL.
 */
const IDEM_TTL = 3_600_000;
const config = { PARTITIONS: 4, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: 1000, SIM_MAX_TOKENS: 64 };

/** Five pieces, a timer tick before each, so that the first goes out in a delta-only append. */
const piecesResponder: ReplyResponder = {
  async *stream(req) {
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 2));
      req.signal.throwIfAborted();
      yield { kind: "delta" as const, text: `p${i} ` };
    }
    yield { kind: "done" as const, finishReason: "stop", usage: { inputTokens: 3, outputTokens: 5 } };
  },
};

describe("dedupe records of a reply's appends", () => {
  let r: TestRedis;
  let w: InProcessWorker | undefined;
  let api: CommandApi;

  beforeAll(async () => {
    r = await testRedis("single");
    const store = createRedisEventStore(r.client, { partitions: config.PARTITIONS, idemTtlMs: IDEM_TTL });
    w = await startInProcessWorker(r, { config, store, responder: piecesResponder, log: createLogger("silent") });
    api = w.api;
  });
  afterAll(async () => {
    await w?.stop();
    await r?.cleanup();
  });

  it("deltas are remembered for DELTA_DEDUPE_TTL_MS, the message and the end for IDEM_TTL", async () => {
    expect(DELTA_DEDUPE_TTL_MS).toBeLessThan(IDEM_TTL);
    const store = createRedisEventStore(r.client, { partitions: config.PARTITIONS, idemTtlMs: IDEM_TTL });
    const conv = await api.createConversation({ tenantId: "t", userId: "u", projectId: "p" });
    const res = await api.postMessage({ conversationId: conv.id, tenantId: "t", userId: "u", tier: "registered", text: "hi", clientMessageId: "m1", maxTokens: 64 });
    expect(res.kind).toBe("accepted");
    const ref = { kind: "conversation" as const, id: conv.id };
    const evs: RecordedEvent[] = await waitFor(async () => {
      const e = await store.read(ref);
      return e.some((x) => x.type === "assistant.completed") ? e : undefined;
    });
    const partition = streamKeys(ref, config.PARTITIONS).partition;
    const ttlOf = (commandId: string): Promise<number> => r.client.pttl(keys.idem(partition, `conversation:${conv.id}:${commandId}`));
    const byCommand = new Map<string, string[]>();
    for (const e of evs) {
      const id = e.meta?.commandId as string;
      byCommand.set(id, [...(byCommand.get(id) ?? []), e.type]);
    }
    const deltaOnly = [...byCommand].filter(([, types]) => types.every((t) => t === "assistant.delta")).map(([id]) => id);
    expect(deltaOnly.length).toBeGreaterThan(0);
    for (const id of deltaOnly) {
      expect(id.startsWith("delta:")).toBe(true);
      const ttl = await ttlOf(id);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(DELTA_DEDUPE_TTL_MS);
    }
    const received = evs.find((e) => e.type === "message.received")?.meta?.commandId as string;
    const completed = evs.find((e) => e.type === "assistant.completed")?.meta?.commandId as string;
    for (const id of [received, completed]) expect(await ttlOf(id)).toBeGreaterThan(IDEM_TTL - 60_000);
  });
});
