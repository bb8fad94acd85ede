import type { Command } from "commander";
import { withContext } from "../context.js";
import { buildWorker, untilSignal } from "../roles.js";
import { installProcessGuards } from "../../../core/process-guards.js";

/**
 * `tributary worker`: one actor worker. Any number may run: partitions are shared out by leases
 * (I3); a worker that dies has its partitions taken over after the lease TTL, and the new owner ends
 * the replies it left running. SIGINT/SIGTERM stop it gracefully (running replies get a few seconds).
 */
export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("run an actor worker: command streams → deciders → event streams, with streamed replies")
    .action(async () => {
      await withContext(async (ctx) => {
        const redis = await ctx.redis({ service: true });
        const log = ctx.log.child({ role: "worker" });
        installProcessGuards(log);
        const worker = buildWorker(ctx.config, redis, log);
        await worker.start();
        log.info({ partitions: ctx.config.PARTITIONS }, "worker running");
        const signal = await untilSignal();
        log.info({ signal }, "worker stopping");
        await worker.stop();
      });
    });
}
