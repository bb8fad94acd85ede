import type { Command } from "commander";
import { z } from "zod";
import { openDatabase } from "../../../projections/db.js";
import { reconcile } from "../../../projections/reconcile.js";
import { createBlobStore } from "../../../core/blob/create.js";
import { createArchivedLogSource } from "../../../core/redis/log-archive.js";
import { withContext } from "../context.js";
import { CheckFailed } from "../exit-codes.js";
import { parseArgs } from "../stream-args.js";

/**
 * `tributary reconcile [--tenant T]`: recompute spend from the event log and compare with
 * spend_daily, up to the projector's checkpoints. Exit 0 when equal, 1 on any difference (each
 * difference printed as a JSON line).
 */
export function registerReconcile(program: Command): void {
  program
    .command("reconcile")
    .description("recompute spend totals from the event log and compare them with the read model; exit 1 on any difference")
    .option("--tenant <tenant>", "only this tenant")
    .action(async (opts: { tenant?: string }) => {
      const a = parseArgs(z.object({ tenant: z.string().min(1).max(256).optional() }), opts);
      await withContext(async (ctx) => {
        const redis = await ctx.redis();
        const opened = await openDatabase(ctx.config, { max: 1 });
        ctx.onClose(() => opened.close());
        const blob = createBlobStore(ctx.config);
        ctx.onClose(() => blob.close());
        const r = await reconcile(opened.db, createArchivedLogSource(redis, blob), {
          partitions: ctx.config.PARTITIONS,
          ...(a.tenant === undefined ? {} : { tenantId: a.tenant }),
        });
        for (const d of r.differences) process.stdout.write(`${JSON.stringify(d)}\n`);
        if (r.differences.length > 0) throw new CheckFailed(`${r.differences.length} spend rows differ from the event log (${r.events} events, ${r.rows} rows checked)`);
        process.stdout.write(`reconcile ok: ${r.events} events, ${r.rows} spend rows agree\n`);
      });
    });
}
