import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../core/logger.js";
import { createArchiver } from "../../core/redis/archiver.js";
import { startArchiveWorker, type ArchiveWorker } from "../support/archive-worker.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/**
 * CONTRACT §3: a repeated clientMessageId answers the first answer — also once the first message has
 * moved to the archive (found by the chaos suite: the offset lookup only scanned Redis).
 */
describe("a repeat after the archive took the first message", () => {
  let r: TestRedis;
  let w: ArchiveWorker | undefined;
  const log = createLogger("silent");
  const P = 4;

  beforeAll(async () => {
    r = await testRedis("single");
  });
  afterAll(async () => {
    await w?.stop();
    await r?.cleanup();
  });

  it("answers 200 with the original ids and offset", async () => {
    w = await startArchiveWorker(r, { partitions: P, snapshotEvery: 100 });
    const { api, store, blobs } = w;
    const conv = await api.createConversation({ tenantId: "t", userId: "u", projectId: undefined });
    const first = await api.postMessage({ conversationId: conv.id, tenantId: "t", userId: "u", tier: "registered", text: "hello", clientMessageId: "m1" });
    expect(first.kind).toBe("accepted");
    // Wait for the reply to end, then archive (and trim) everything older than now.
    for (let i = 0; i < 200; i++) {
      const evs = await store.read({ kind: "conversation", id: conv.id });
      if (evs.some((e) => e.type === "assistant.completed")) break;
      await new Promise((res) => setTimeout(res, 25));
    }
    await new Promise((res) => setTimeout(res, 20));
    const archiver = createArchiver(r.client, blobs, { partitions: P, retentionMs: 0, log });
    const report = await archiver.runOnce({ olderThanMs: 1 });
    expect(report.trimmed).toBeGreaterThan(0);
    // The worker's cached conversation state still knows the message; only its offset is archived.
    const again = await api.postMessage({ conversationId: conv.id, tenantId: "t", userId: "u", tier: "registered", text: "hello", clientMessageId: "m1" });
    expect(again).toEqual({ kind: "accepted", status: 200, body: first.kind === "accepted" ? first.body : undefined });
  });
});
