import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileBlobStore } from "../../core/blob/index.js";
import type { BlobStore } from "../../core/blob/index.js";
import { createLogger } from "../../core/logger.js";
import { createArchivedEventReader } from "../../core/redis/archived-reader.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { ActorWorker, CommandApi } from "../../actors/runtime/index.js";
import { startInProcessWorker } from "./in-process-worker.js";
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
  const w = await startInProcessWorker(r, {
    config: { PARTITIONS: P, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: o.snapshotEvery, SIM_MAX_TOKENS: 8 },
    store,
    reader: createArchivedEventReader(r.client, blobs, P),
    blobs,
    responder: {
      async *stream() {
        yield { kind: "delta" as const, text: "hi" };
        yield { kind: "done" as const, finishReason: "stop", usage: { inputTokens: 2, outputTokens: 1 } };
      },
    },
    log,
    consumer: { blockMs: 100, retryBaseMs: 50 },
  });
  return {
    worker: w.worker,
    api: w.api,
    store,
    blobs,
    partitions: P,
    async stop() {
      await w.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
