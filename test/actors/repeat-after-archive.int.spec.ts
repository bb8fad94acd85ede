import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileBlobStore } from "../../core/blob/index.js";
import { createLogger } from "../../core/logger.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import { createArchiver } from "../../core/redis/archiver.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { ActorWorker, CommandApi, CommandBus, ReplyListener, allPartitionsOwnership } from "../../actors/runtime/index.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/**
 * CONTRACT §3: a repeated clientMessageId answers the first answer — also once the first message has
 * moved to the archive (found by the chaos suite: the offset lookup only scanned Redis).
 */
describe("a repeat after the archive took the first message", () => {
  let r: TestRedis;
  let dir: string;
  let worker: ActorWorker;
  let replies: ReplyListener;
  const log = createLogger("silent");
  const P = 4;

  beforeAll(async () => {
    r = await testRedis("single");
    dir = mkdtempSync(join(tmpdir(), "tributary-repeat-"));
  });
  afterAll(async () => {
    await worker?.stop(100);
    await replies?.stop();
    await r?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 200 with the original ids and offset", async () => {
    const blobs = createFileBlobStore(dir);
    const store = createRedisEventStore(r.client, { partitions: P, idemTtlMs: 60_000 });
    worker = new ActorWorker({
      config: { PARTITIONS: P, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: 100, SIM_MAX_TOKENS: 8 },
      redis: r.client,
      store,
      reader: createArchivedEventReader(r.client, blobs, P),
      blobs,
      responder: {
        async *stream() {
          yield { kind: "delta" as const, text: "hi" };
          yield { kind: "done" as const, finishReason: "stop", usage: { inputTokens: 2, outputTokens: 1 } };
        },
      },
      ownership: allPartitionsOwnership(P),
      log,
      consumer: { blockMs: 100, retryBaseMs: 50 },
    });
    await worker.start();
    replies = new ReplyListener(r.duplicate(), log);
    replies.start();
    const api = new CommandApi(new CommandBus(r.client, P, replies), worker.ledgerPort);
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
