import { createLogger } from "../../core/logger.js";
import { ActorWorker, CommandApi, CommandBus, ReplyListener, allPartitionsOwnership, type WorkerOptions } from "../../actors/runtime/index.js";
import type { TestRedis } from "./redis.js";

/**
 * One actor worker in the test process owning every partition, a reply listener on its own
 * connection and a command API over both — the set-up of the runtime specs. Small consumer timings
 * so retries and reclaims happen within a test; `stop()` ends worker and listener (not Redis).
 *
 *   const w = await startInProcessWorker(r, { config, store, responder });
 *   await w.api.postMessage(...);
 *   afterAll(() => w.stop());
 */
export interface InProcessWorker {
  worker: ActorWorker;
  api: CommandApi;
  replies: ReplyListener;
  stop(): Promise<void>;
}

export type InProcessWorkerOptions = Omit<WorkerOptions, "redis" | "ownership" | "log"> & Partial<Pick<WorkerOptions, "log">>;

export async function startInProcessWorker(r: TestRedis, o: InProcessWorkerOptions): Promise<InProcessWorker> {
  const log = o.log ?? createLogger("silent");
  const worker = new ActorWorker({
    consumer: { blockMs: 100, retryBaseMs: 50, claimIdleMs: 2000 },
    ...o,
    redis: r.client,
    ownership: allPartitionsOwnership(o.config.PARTITIONS),
    log,
  });
  await worker.start();
  const replies = new ReplyListener(r.duplicate(), log);
  replies.start();
  const api = new CommandApi(new CommandBus(r.client, o.config.PARTITIONS, replies), worker.ledgerPort);
  return {
    worker,
    api,
    replies,
    async stop() {
      await worker.stop(100);
      await replies.stop();
    },
  };
}
