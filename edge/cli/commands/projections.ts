import type { Command } from "commander";
import { z } from "zod";
import { openDatabase } from "../../../projections/db.js";
import { rebuild } from "../../../projections/rebuild.js";
import { READ_MODELS } from "../../../projections/schema.js";
import { projectionStatus } from "../../../projections/status.js";
import { createBlobStore } from "../../../core/blob/create.js";
import { createArchivedLogSource } from "../../../core/redis/log-archive.js";
import { withContext } from "../context.js";
import { parseArgs } from "../stream-args.js";

/**
 * `tributary projections status` — lag per partition, in events and seconds.
 * `tributary projections rebuild [name]` — rebuild the read models from the log into a fresh schema
 * while the system runs, then switch over atomically (projections/rebuild.ts). Every read model is
 * rebuilt together (they share one checkpoint per partition); `name` is checked against the known
 * read models so a typo is a usage error rather than a silent full rebuild.
 */
const RebuildArgs = z.object({ name: z.enum(["all", ...READ_MODELS]).default("all") });

export function registerProjections(program: Command): void {
  const cmd = program.command("projections").description("read-model operations: status | rebuild [name]");
  cmd
    .command("status")
    .description("lag per partition (events and seconds)")
    .option("--format <format>", "table or json", "table")
    .action(async (opts: { format: string }) => {
      const { format } = parseArgs(z.object({ format: z.enum(["table", "json"]) }), opts);
      await withContext(async (ctx) => {
        const redis = await ctx.redis();
        const opened = await openDatabase(ctx.config, { max: 1 });
        ctx.onClose(() => opened.close());
        const rows = await projectionStatus(opened.db, redis, ctx.config.PARTITIONS);
        if (format === "json") {
          process.stdout.write(`${JSON.stringify(rows)}\n`);
          return;
        }
        process.stdout.write("partition  checkpoint                applied    log  lag_events  lag_seconds\n");
        for (const r of rows) {
          process.stdout.write(
            `${String(r.partition).padStart(9)}  ${r.checkpoint.padEnd(24)}  ${String(r.applied).padStart(7)}  ${String(r.logEntries).padStart(5)}  ${String(r.lagEvents).padStart(10)}  ${r.lagSeconds.toFixed(1).padStart(11)}${r.trimmedUnapplied ? "  TRIMMED BEFORE PROJECTED" : ""}\n`,
          );
        }
        const lag = rows.reduce((a, r) => a + r.lagEvents, 0);
        process.stdout.write(`total lag: ${lag} events, max ${Math.max(0, ...rows.map((r) => r.lagSeconds)).toFixed(1)} s\n`);
      });
    });
  cmd
    .command("rebuild")
    .description("rebuild the read models from the log into a new schema, then switch over atomically")
    .argument("[name]", `all (default) or one of ${READ_MODELS.join(", ")}; all read models are rebuilt together`)
    .action(async (name: string | undefined) => {
      parseArgs(RebuildArgs, { name });
      await withContext(async (ctx) => {
        const redis = await ctx.redis();
        const opened = await openDatabase(ctx.config, { max: 2 });
        ctx.onClose(() => opened.close());
        let last = 0;
        const blob = createBlobStore(ctx.config);
        ctx.onClose(() => blob.close());
        // The whole log: archived segments first, then the Redis tail.
        const r = await rebuild(opened.db, createArchivedLogSource(redis, blob), {
          partitions: ctx.config.PARTITIONS,
          onProgress: ({ total }) => {
            if (total - last >= 10_000) {
              last = total;
              process.stderr.write(`rebuild: ${total} events\n`);
            }
          },
        });
        process.stdout.write(`rebuilt ${r.applied} events into ${r.schema}; dropped ${r.previous}\n`);
      });
    });
}
