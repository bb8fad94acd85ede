import { hostname } from "node:os";
import type { Command } from "commander";
import { z } from "zod";
import { allPartitions } from "../../../core/partition.js";
import { PartitionLease } from "../../../core/redis/lease.js";
import { migrateToLatest } from "../../../migrations/index.js";
import { openDatabase } from "../../../projections/db.js";
import { Projector } from "../../../projections/projector.js";
import { createBlobStore } from "../../../core/blob/create.js";
import { createArchivedLogSource } from "../../../core/redis/log-archive.js";
import { withContext } from "../context.js";
import { parseArgs } from "../stream-args.js";
import { installProcessGuards } from "../../../core/process-guards.js";

/**
 * `tributary projector`: one projector process. Any number may run: the consumer group spreads
 * triggers, and batches of one partition serialise on its checkpoint row (projections/projector.ts),
 * so two processes never double-apply. Partitions are shared out with leases (role "projector") so
 * each process does its own share of the work; `--all-partitions` skips the leases (correct too, as
 * said, only redundant work). Stops gracefully on SIGINT/SIGTERM.
 */
export function registerProjector(program: Command): void {
  program
    .command("projector")
    .description("run the projector: partition logs → Postgres read models, exactly once")
    .option("--all-partitions", "project every partition without taking leases")
    .action(async (opts: { allPartitions?: boolean }) => {
      const a = parseArgs(z.object({ allPartitions: z.boolean().optional() }), opts);
      await withContext(async (ctx) => {
        // A long-running role: keep retrying through a Redis restart instead of failing fast.
        const redis = await ctx.redis({ service: true });
        const opened = await openDatabase(ctx.config, { max: 4, applicationName: "tributary-projector" });
        ctx.onClose(() => opened.close());
        await migrateToLatest(opened.db as never);
        const log = ctx.log.child({ role: "projector" });
        installProcessGuards(log);
        const all = allPartitions(ctx.config.PARTITIONS);
        const lease = a.allPartitions ? undefined : new PartitionLease({ redis, role: "projector", partitions: ctx.config.PARTITIONS, log });
        lease?.start();
        // Archive first, then Redis: entries the archiver already trimmed are still projected.
        const blob = createBlobStore(ctx.config);
        ctx.onClose(() => blob.close());
        const projector = new Projector({
          db: opened.db,
          redis,
          source: createArchivedLogSource(redis, blob),
          partitions: () => (lease ? lease.owned() : all),
          consumer: `${hostname()}-${process.pid}`,
          maxDeliveries: ctx.config.MAX_DELIVERIES,
          log,
        });
        await projector.start();
        log.info({ target: opened.target, partitions: ctx.config.PARTITIONS }, "projector running");
        await new Promise<void>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
        await projector.stop();
        await lease?.stop();
        log.info(projector.counters, "projector stopped");
      });
    });
}
