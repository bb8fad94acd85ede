import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TributaryError } from "../../core/errors.js";
import { createLogger } from "../../core/logger.js";
import { createArchiver } from "../../core/redis/archiver.js";
import { RECENT_MESSAGES } from "../../actors/conversation/state.js";
import { startArchiveWorker, type ArchiveWorker } from "../support/archive-worker.js";
import { testRedis, type TestRedis } from "../support/redis.js";

/**
 * CONTRACT §3 through the real runtime, for a message older than the ones a conversation keeps in
 * full (state.ts RECENT_MESSAGES): a repeat answers 200 with the first answer, another text 409
 * CONFLICT — from the log, here after the archive took it and after the actor was rehydrated from a
 * snapshot. And the state stays bounded.
 */
describe("a repeat older than the messages kept in full", () => {
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

  it("answers 200 with the original ids and offset, 409 for another text, and keeps the state bounded", async () => {
    w = await startArchiveWorker(r, { partitions: P, snapshotEvery: 25 });
    const { worker, api, store, blobs } = w;
    const conv = await api.createConversation({ tenantId: "t", userId: "u", projectId: undefined });
    const post = (clientMessageId: string, text: string) =>
      api.postMessage({ conversationId: conv.id, tenantId: "t", userId: "u", tier: "privileged", text, clientMessageId });
    const replyEnded = async (n: number) => {
      for (let i = 0; i < 400; i++) {
        const evs = await store.read({ kind: "conversation", id: conv.id });
        if (evs.filter((e) => e.type === "assistant.completed").length >= n) return;
        await new Promise((res) => setTimeout(res, 10));
      }
      throw new Error(`reply ${n} did not end`);
    };

    const N = RECENT_MESSAGES + 6;
    const firsts = [];
    for (let i = 0; i < N; i++) {
      const a = await post(`k${i}`, `text ${i}`);
      expect(a.kind).toBe("accepted");
      firsts.push(a);
      await replyEnded(i + 1);
    }
    const state = (await worker.conversations.load(conv.id)).state;
    expect(state.context.recent.length).toBe(RECENT_MESSAGES);
    expect(state.context.recent.some((m) => m.clientMessageId === "k0")).toBe(false);

    // The oldest message, only in the log: the first answer again, or a CONFLICT for another text.
    expect(await post("k0", "text 0")).toEqual({ ...firsts[0], status: 200 });
    await expect(post("k0", "another text")).rejects.toSatisfy((e) => e instanceof TributaryError && e.code === "CONFLICT");

    // Once the archive took the whole history, and with the actor rehydrated from a snapshot.
    await new Promise((res) => setTimeout(res, 20));
    const report = await createArchiver(r.client, blobs, { partitions: P, retentionMs: 0, log }).runOnce({ olderThanMs: 1 });
    expect(report.trimmed).toBeGreaterThan(0);
    worker.conversations.evict(conv.id);
    expect(await post("k1", "text 1")).toEqual({ ...firsts[1], status: 200 });
    expect(await post(`k${N - 1}`, `text ${N - 1}`)).toEqual({ ...firsts[N - 1], status: 200 });

    // And a new message is still a new message.
    const fresh = await post("k-new", "new text");
    expect(fresh).toMatchObject({ kind: "accepted", status: 201 });
  });
});
