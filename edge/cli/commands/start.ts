import { hostname } from "node:os";
import type { Command } from "commander";
import { createBlobStore } from "../../../core/blob/create.js";
import { errorMessage } from "../../../core/errors.js";
import { PartitionLease } from "../../../core/redis/lease.js";
import { createArchiver } from "../../../core/redis/archiver.js";
import { createArchivedLogSource } from "../../../core/redis/log-archive.js";
import { migrateToLatest } from "../../../migrations/index.js";
import { openDatabase, openPglite, servePglite } from "../../../projections/db.js";
import { Projector } from "../../../projections/projector.js";
import { startEdgeRole } from "../../role.js";
import { withContext } from "../context.js";
import { ensureLocalRedis } from "../local-redis.js";
import { buildWorker, untilSignal } from "../roles.js";
import { installProcessGuards } from "../../../core/process-guards.js";

/** How often `start` runs the archiver. */
const ARCHIVE_EVERY_MS = 60_000;

/**
 * `tributary start`: every role in one process — edge, actor worker, projector and archiver — with
 * embedded defaults (a local Redis when none answers, PGlite served on loopback, files for blobs).
 * Several `start` processes may run against the same Redis: leases share the partitions out.
 */
export function registerStart(program: Command): void {
  program
    .command("start")
    .description("run every role in one process (edge, worker, projector, archiver) with embedded defaults")
    .action(async () => {
      await withContext(async (ctx) => {
        const { config } = ctx;
        const log = ctx.log;
        installProcessGuards(log);
        const localRedis = await ensureLocalRedis(config, log);
        ctx.onClose(() => localRedis.stop());
        const redis = await ctx.redis({ service: true });
        redis.on("error", (e: unknown) => log.warn({ err: errorMessage(e) }, "redis connection error"));

        // Postgres: the configured server, or PGlite owned by this process and served on loopback
        // so CLI commands (and our own pools) reach it while we run.
        if (!config.DATABASE_URL) {
          const embedded = await openPglite(`${config.DATA_DIR}/pg`);
          await migrateToLatest(embedded.db as never);
          const served = await servePglite(embedded, config.DATA_DIR);
          ctx.onClose(async () => {
            await served.stop();
            await embedded.close();
          });
          log.info({ port: served.port }, "embedded Postgres (PGlite) served on loopback");
        }
        const db = await openDatabase(config, { max: 8, applicationName: "tributary" });
        ctx.onClose(() => db.close());
        if (config.DATABASE_URL) await migrateToLatest(db.db as never);

        const blobs = createBlobStore(config);
        const worker = buildWorker(config, redis, log.child({ role: "worker" }), blobs);
        await worker.start();
        ctx.onClose(() => worker.stop());

        const owner = `${hostname()}-${process.pid}`;
        const projectorLease = new PartitionLease({ redis, role: "projector", partitions: config.PARTITIONS, owner, log });
        projectorLease.start();
        const projector = new Projector({
          db: db.db,
          redis,
          partitions: () => projectorLease.owned(),
          consumer: owner,
          maxDeliveries: config.MAX_DELIVERIES,
          // The archiver trims partition logs once archived: the projector reads across both.
          source: createArchivedLogSource(redis, blobs),
          log: log.child({ role: "projector" }),
        });
        await projector.start();
        ctx.onClose(async () => {
          await projector.stop();
          await projectorLease.stop();
        });

        const archiverLease = new PartitionLease({ redis, role: "archiver", partitions: config.PARTITIONS, owner, log });
        archiverLease.start();
        const archiver = createArchiver(redis, blobs, {
          partitions: config.PARTITIONS,
          retentionMs: config.RETENTION,
          partitionFilter: (p) => archiverLease.owned().includes(p),
          log: log.child({ role: "archiver" }),
        });
        let archiving: Promise<unknown> = Promise.resolve();
        const timer = setInterval(() => {
          archiving = archiver
            .runOnce({ trimLog: true })
            .catch((e: unknown) => log.warn({ err: errorMessage(e) }, "archive run failed; will retry"));
        }, ARCHIVE_EVERY_MS);
        timer.unref();
        ctx.onClose(async () => {
          clearInterval(timer);
          await archiving;
          await archiverLease.stop();
        });

        const edge = await startEdgeRole({ config, log, redis, db });
        ctx.onClose(() => edge.stop());
        process.stderr.write(`tributary listening on http://${config.HOST}:${edge.port}\n`);
        const signal = await untilSignal();
        log.info({ signal }, "stopping");
      });
    });
}
