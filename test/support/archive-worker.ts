import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileBlobStore } from "../../core/blob/index.js";
import type { BlobStore } from "../../core/blob/index.js";
import { createLogger } from "../../core/logger.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { ActorWorker, CommandApi, CommandBus, ReplyListener, allPartitionsOwnership } from "../../actors/runtime/index.js";
import type { TestRedis } from "./redis.js";

/**
 * One in-process worker whose reads fall through to the archive (file blob store in a temp dir), a
 * responder that answers "hi" at once, a reply listener and a command API — what the specs of
 * repeats across the archive and snapshots need. `stop()` ends all of it and removes the dir.
 */
export interface ArchiveWorker {
  worker: ActorWorker;
  api: CommandApi;
  store: ReturnType<typeof createRedisEventStore>;
  blobs: BlobStore;
  partitions: number;
  stop(): Promise<void>;
}

export async function startArchiveWorker(r: TestRedis, o: { partitions?: number; snapshotEvery: number }): Promise<ArchiveWorker> {
  const P = o.partitions ?? 4;
  const dir = mkdtempSync(join(tmpdir(), "tributary-archive-worker-"));
  const blobs = createFileBlobStore(dir);
  const log = createLogger("silent");
  const store = createRedisEventStore(r.client, { partitions: P, idemTtlMs: 60_000 });
  const worker = new ActorWorker({
    config: { PARTITIONS: P, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: o.snapshotEvery, SIM_MAX_TOKENS: 8 },
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
  const replies = new ReplyListener(r.duplicate(), log);
  replies.start();
  const api = new CommandApi(new CommandBus(r.client, P, replies), worker.ledgerPort);
  return {
    worker,
    api,
    store,
    blobs,
    partitions: P,
    async stop() {
      await worker.stop(100);
      await replies.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
