import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { RecordedEvent } from "../../core/envelope.js";
import type { CommandApi, ReplyResponder } from "../../actors/runtime/index.js";
import { startInProcessWorker, type InProcessWorker } from "../support/in-process-worker.js";
import { testRedis, type TestRedis } from "../support/redis.js";
import { waitFor } from "../support/wait.js";

/**
 * A reply's pieces that arrive while an append is in flight go out together in the next append,
 * and the end goes with the last pieces when the responder finishes within that batch
 * (actors/runtime/pump.ts, ConversationProcess.runReply): fewer appends, the same events.
 */

/** Pieces in bursts: the pieces of one burst at once, a timer tick between bursts, then "done". */
function burstResponder(bursts: number[]): ReplyResponder {
  return {
    async *stream(req) {
      let i = 0;
      for (const n of bursts) {
        await new Promise((r) => setTimeout(r, 1));
        for (let k = 0; k < n; k++) {
          req.signal.throwIfAborted();
          yield { kind: "delta" as const, text: `w${i++} ` };
        }
      }
      yield { kind: "done" as const, finishReason: "stop", usage: { inputTokens: 5, outputTokens: i } };
    },
  };
}

const config = { PARTITIONS: 4, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: 1000, SIM_MAX_TOKENS: 64 };

describe.each([
  { name: "a one-piece reply", bursts: [1] },
  { name: "a reply in bursts", bursts: [3, 1, 4, 2] },
])("reply pieces batched per append: $name", ({ bursts }) => {
  let r: TestRedis;
  let w: InProcessWorker | undefined;
  let api: CommandApi;
  const log = createLogger("silent");
  const pieces = bursts.reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    r = await testRedis("single");
    const store = createRedisEventStore(r.client, { partitions: config.PARTITIONS, idemTtlMs: 60_000 });
    w = await startInProcessWorker(r, { config, store, responder: burstResponder(bursts), log });
    api = w.api;
  });
  afterAll(async () => {
    await w?.stop();
    await r?.cleanup();
  });

  it("appends every piece once with contiguous indexes, the end with the last burst, and bills the usage", async () => {
    const store = createRedisEventStore(r.client, { partitions: config.PARTITIONS, idemTtlMs: 60_000 });
    const conv = await api.createConversation({ tenantId: "t", userId: "u", projectId: "p" });
    const res = await api.postMessage({ conversationId: conv.id, tenantId: "t", userId: "u", tier: "registered", text: "hi", clientMessageId: "m1", maxTokens: 64 });
    expect(res.kind).toBe("accepted");
    const evs: RecordedEvent[] = await waitFor(async () => {
      const e = await store.read({ kind: "conversation", id: conv.id });
      return e.some((x) => x.type === "assistant.completed") ? e : undefined;
    });
    expect(evs.map((e) => e.version)).toEqual(evs.map((_, i) => i + 1));
    const reply = evs.filter((e) => e.type === "assistant.delta" || e.type === "assistant.completed");
    expect(reply.map((e) => e.type)).toEqual([...Array(pieces).fill("assistant.delta"), "assistant.completed"]);
    expect(reply.slice(0, -1).map((e) => (e.data as { index: number }).index)).toEqual(Array.from({ length: pieces }, (_, i) => i));
    const completed = reply[reply.length - 1] as RecordedEvent;
    expect((completed.data as { text: string }).text).toBe(Array.from({ length: pieces }, (_, i) => `w${i} `).join(""));
    // At most one append per burst (bursts that arrive during one append share the next), and the
    // last burst's pieces and the end share one append (command id). One by one it was pieces + 1.
    const appends = new Set(reply.map((e) => e.meta?.commandId));
    expect(appends.size).toBeLessThanOrEqual(bursts.length);
    expect(reply[reply.length - 2]?.meta?.commandId).toBe(completed.meta?.commandId);
    const quota = await waitFor(async () => {
      const q = await api.getLedger({ tenantId: "t", userId: "u" });
      return q.used.tokens > 0 ? q : undefined;
    });
    expect(quota.used.tokens).toBe(5 + pieces);
    expect(quota.reserved.tokens).toBe(0);
  });
});
